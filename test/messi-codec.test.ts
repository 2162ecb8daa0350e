/**
 * Messi user messages (src/messi/codec.ts): protobuf through protobufjs from .proto text, the
 * empty-oneof rule byte for byte, decoding of hand-made payloads as pbtools writes them, and
 * malformed payloads as data, never exceptions.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MessiEncodeError, MessiProtocol, loadProtocol } from '../src/messi/codec.js';

const CHAT = fileURLToPath(new URL('./fixtures/messi-runtime/chat.proto', import.meta.url));
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('chat protocol', () => {
  const chat = loadProtocol({ path: CHAT });

  it('loads from a path or from text, and finds the package', () => {
    expect(chat.packageName).toBe('chat');
    const fromText = loadProtocol({ text: readFileSync(CHAT, 'utf8'), file: 'chat.proto' });
    expect(fromText.names('client-to-server')).toEqual(['connect_req', 'message_req']);
    expect(fromText.names('server-to-client')).toEqual(['connect_rsp', 'message_ind']);
  });

  it('an empty message in the oneof is still encoded: its tag and a zero length', () => {
    expect(toHex(chat.encodeServerToClient({ type: 'connect_rsp', body: {} }))).toBe('0a00');
    expect(chat.decodeServerToClient(hex('0a00'))).toEqual({ ok: true, message: { type: 'connect_rsp', body: {} } });
  });

  it('encodes like pbtools: field tags, lengths, no proto3 defaults', () => {
    expect(toHex(chat.encodeClientToServer({ type: 'connect_req', body: { user: 'Eric' } }))).toBe('0a060a0445726963');
    // An empty string is a default: not on the wire, but the member still is.
    expect(toHex(chat.encodeClientToServer({ type: 'connect_req', body: { user: '' } }))).toBe('0a00');
    expect(toHex(chat.encodeServerToClient({ type: 'message_ind', body: { user: 'a', message: 'hi' } }))).toBe(
      '12070a016112026869',
    );
  });

  it('decodes hand-made payloads, filling defaults', () => {
    expect(chat.decodeServerToClient(hex('12 04 12 02 68 69'))).toEqual({
      ok: true,
      message: { type: 'message_ind', body: { user: '', message: 'hi' } },
    });
    // Unknown fields are skipped (a newer peer's additions).
    expect(chat.decodeClientToServer(hex('0a 06 0a 04 45 72 69 63 18 05'))).toEqual({
      ok: true,
      message: { type: 'connect_req', body: { user: 'Eric' } },
    });
    // Two oneof members on the wire: the last wins, as protobuf says.
    expect(chat.decodeClientToServer(hex('0a 00 12 00'))).toMatchObject({ ok: true, message: { type: 'message_req' } });
  });

  it('an empty ClientToServer carries no choice: a typed result, not an exception', () => {
    expect(chat.decodeClientToServer(new Uint8Array(0))).toMatchObject({ ok: false, error: { code: 'no-choice' } });
  });

  it('malformed payloads are typed errors', () => {
    for (const bad of ['0a05', '0f', '0a', '0a020a05', '00', 'ffffffffffffffffffff01']) {
      const r = chat.decodeClientToServer(hex(bad));
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('malformed');
    }
  });

  it('fuzz: random payloads never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const a = chat.decodeClientToServer(bytes);
        const b = chat.decodeServerToClient(bytes);
        expect(typeof a.ok).toBe('boolean');
        expect(typeof b.ok).toBe('boolean');
      }),
      { numRuns: 1000 },
    );
  });

  it('round trip for random strings', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (user, message) => {
        const bytes = chat.encodeServerToClient({ type: 'message_ind', body: { user, message } });
        expect(chat.decodeServerToClient(bytes)).toEqual({ ok: true, message: { type: 'message_ind', body: { user, message } } });
      }),
    );
  });

  it('encoding a message outside the schema throws MessiEncodeError (a programming error)', () => {
    expect(() => chat.encodeClientToServer({ type: 'nope', body: {} })).toThrow(MessiEncodeError);
    expect(() => chat.encodeClientToServer({ type: 'connect_req', body: { user: 5 } })).toThrow(MessiEncodeError);
    // A server-to-client name is not a client-to-server message.
    expect(() => chat.encodeClientToServer({ type: 'connect_rsp', body: {} })).toThrow(MessiEncodeError);
  });
});

describe('other field kinds', () => {
  const proto = MessiProtocol.fromSource(`
    syntax = "proto3";
    package kinds;
    enum Colour { RED = 0; GREEN = 1; }
    message ClientToServer { oneof messages { Foo foo = 1; Empty bar = 7; } }
    message ServerToClient { oneof messages { Foo foo = 1; } }
    message Empty {}
    message Foo { int64 big = 1; bytes data = 2; Colour colour = 3; repeated int32 list = 4; Empty sub = 5; bool flag = 6; }
  `);

  it('64-bit integers and enums decode as numbers, bytes as Uint8Array, unset messages as null', () => {
    const bytes = proto.encodeClientToServer({ type: 'foo', body: { big: 2 ** 40, data: hex('0102'), colour: 1, list: [1, 2] } });
    const r = proto.decodeClientToServer(bytes);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.message.type).toBe('foo');
    const body = r.message.body;
    expect(body['big']).toBe(2 ** 40);
    expect(body['colour']).toBe(1);
    expect(body['list']).toEqual([1, 2]);
    expect(body['flag']).toBe(false);
    expect(body['sub']).toBeNull();
    expect(body['data']).toBeInstanceOf(Uint8Array);
    expect(toHex(body['data'] as Uint8Array)).toBe('0102');
  });

  it('empty member with a high field number: tag 0x3a, zero length', () => {
    expect(toHex(proto.encodeClientToServer({ type: 'bar', body: {} }))).toBe('3a00');
  });

  it('refuses a .proto that is not a Messi protocol', () => {
    expect(() => MessiProtocol.fromSource('syntax = "proto3"; message A {}')).toThrow(/ClientToServer/);
  });
});
