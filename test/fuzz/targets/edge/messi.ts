/**
 * Messi (src/messi): the stream frame decoder (framing.ts, fed in random chunks) and the protobuf
 * codec (codec.ts), and the app API's client→server messages (src/api/protocol.ts and
 * meshgw.proto) as the API server reads them: frames through a MessiServerConnection capped at
 * API_MAX_FRAME_BYTES, each payload decoded. Frames stay within their cap; decode → encode →
 * decode is stable; decoding never throws.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { API_MAX_FRAME_BYTES, meshgwProtocol } from '../../../../src/api/protocol.js';
import { MessiEncodeError, loadProtocol, type MessiDirection, type MessiMessage, type MessiProtocol } from '../../../../src/messi/codec.js';
import { HEADER_SIZE, MessiFrameDecoder, encodeFrame, encodeKind, type MessiVersion } from '../../../../src/messi/framing.js';
import { MessiServerConnection } from '../../../../src/messi/server.js';
import { bytesEqual, expectRejection, invariant, type FuzzTarget } from '../../harness.js';
import { chunks } from '../framing.js';

// ── messi-framing ───────────────────────────────────────────────────────────────────────────────

const FRAMING_MAX = 1024;

interface FramingState {
  decoder: MessiFrameDecoder;
}

export const messiFramingTarget: FuzzTarget<FramingState> = {
  name: 'messi-framing',
  maxLength: 4096,
  corpus: () => {
    const p = (n: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * 31) & 0xff);
    const out: Uint8Array[] = [];
    for (const v of ['seed', 'current'] as const) {
      out.push(encodeKind(v, 'ping'), encodeKind(v, 'client-to-server', p(1)), encodeKind(v, 'server-to-client', p(100)), encodeKind(v, 'pong'));
      out.push(encodeFrame(v, 0x7f, p(FRAMING_MAX)));
      out.push(new Uint8Array([...encodeKind(v, 'ping'), ...encodeKind(v, 'client-to-server', p(20)), ...encodeKind(v, 'ping')]));
    }
    out.push(encodeFrame('seed', 0xffff_ffff, p(3)), encodeFrame('current', 0xff, p(0)), encodeFrame('current', 1, p(FRAMING_MAX + 1)));
    return out;
  },
  setup: () => ({ decoder: new MessiFrameDecoder({ version: 'auto', maxFrame: FRAMING_MAX }) }),
  // The decoder stops for good after an error: start a new stream often.
  resetEvery: 20,
  one(input, state, rng) {
    const d = state.decoder;
    const startPos = d.position;
    let consumed = 0;
    for (const piece of chunks(input, rng)) {
      const wasFailed = d.failed;
      const events = d.push(piece);
      if (wasFailed) invariant(events.length === 0, 'a failed decoder gave events');
      else consumed += piece.length;
      for (const e of events) {
        if ('error' in e) {
          invariant(e.error.code === 'oversize' && e.error.size > FRAMING_MAX && e.error.maxFrame === FRAMING_MAX, `unexpected error ${e.error.code} size ${e.error.size}`);
          invariant(d.failed, 'an oversize error did not stop the decoder');
          continue;
        }
        const v = d.version as MessiVersion;
        invariant(v !== undefined, 'a frame before the version is known');
        invariant(e.frame.payload.length <= FRAMING_MAX, `frame of ${e.frame.payload.length} bytes > ${FRAMING_MAX}`);
        invariant(e.offset >= 0 && e.offset < d.position + piece.length, `frame offset ${e.offset}`);
        const again = new MessiFrameDecoder({ version: v, maxFrame: FRAMING_MAX }).push(encodeFrame(v, e.frame.type, e.frame.payload));
        const first = again[0];
        invariant(again.length === 1 && first !== undefined && 'frame' in first, 're-encoded frame is not one frame');
        invariant(first.frame.type === e.frame.type && bytesEqual(first.frame.payload, e.frame.payload), 'decode → encode → decode changed the frame');
      }
      invariant(d.buffered <= HEADER_SIZE.seed + FRAMING_MAX, `decoder holds ${d.buffered} bytes`);
    }
    if (!d.failed) invariant(d.position === startPos + consumed, `position ${d.position}, expected ${startPos + consumed}`);
    if (rng.int(16) === 0) {
      const buffered = d.buffered;
      const failed = d.failed;
      const end = d.end();
      if (failed || buffered === 0) invariant(end.length === 0, 'end() reported on a clean or failed stream');
      else {
        const e = end[0];
        invariant(end.length === 1 && e !== undefined && 'error' in e && e.error.code === 'truncated' && e.error.size === buffered, 'end() mid-frame is not one truncated error');
      }
      state.decoder = new MessiFrameDecoder({ version: 'auto', maxFrame: FRAMING_MAX });
    }
  },
  check(state) {
    invariant(state.decoder.buffered <= HEADER_SIZE.seed + FRAMING_MAX, `decoder holds ${state.decoder.buffered} bytes`);
  },
};

// ── messi-codec ─────────────────────────────────────────────────────────────────────────────────

/** test/fixtures/messi-runtime/chat.proto, from test/ (vitest) or dist/test (main.js). */
function chatProto(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of [['..', '..', '..'], ['..', '..', '..', '..', '..', 'test']]) {
    const f = join(here, ...up, 'fixtures', 'messi-runtime', 'chat.proto');
    if (existsSync(f)) return readFileSync(f, 'utf8');
  }
  return undefined;
}

/**
 * decode → encode → decode: a message that decodes encodes (it is within the schema), and its
 * encoding decodes to a message that encodes to the same bytes.
 */
function roundTrip(protocol: MessiProtocol, direction: MessiDirection, message: MessiMessage): void {
  const once = expectRejection(
    () => protocol.encode(direction, message),
    (err) => err instanceof MessiEncodeError,
  );
  invariant(once !== undefined, `a decoded ${message.type} does not encode`);
  const again = protocol.decode(direction, once);
  invariant(again.ok, `a re-encoded ${message.type} does not decode: ${again.ok ? '' : again.error.reason}`);
  invariant(again.message.type === message.type, `re-encoded ${message.type} decodes as ${again.message.type}`);
  const twice = protocol.encode(direction, again.message);
  invariant(bytesEqual(once, twice), `decode → encode → decode → encode changed ${message.type}`);
}

function decodeChecked(protocol: MessiProtocol, direction: MessiDirection, payload: Uint8Array): MessiMessage | undefined {
  const r = protocol.decode(direction, payload);
  if (!r.ok) {
    invariant(r.error.code === 'malformed' || r.error.code === 'no-choice', `decode error code ${String(r.error.code)}`);
    invariant(typeof r.error.reason === 'string' && r.error.reason.length > 0, 'decode error without a reason');
    invariant(r.error.offset >= 0 && r.error.offset <= payload.length + 10, `decode error offset ${r.error.offset}`);
    return undefined;
  }
  invariant(protocol.names(direction).includes(r.message.type), `decoded type ${r.message.type} is not a member`);
  invariant(typeof r.message.body === 'object' && r.message.body !== null, 'decoded body is not an object');
  roundTrip(protocol, direction, r.message);
  return r.message;
}

let chatCache: MessiProtocol | undefined;
const chat = (): MessiProtocol => (chatCache ??= loadProtocol({ text: chatProto() ?? '', file: 'chat.proto' }));

export const messiCodecTarget: FuzzTarget = {
  name: 'messi-codec',
  maxLength: 1024,
  corpus: () => {
    const c = chat();
    const m = meshgwProtocol();
    // The first byte chooses the protocol and direction; the rest is the payload.
    const tag = (k: number, b: Uint8Array): Uint8Array => new Uint8Array([k, ...b]);
    return [
      tag(0, c.encodeClientToServer({ type: 'connect_req', body: { user: 'Eric' } })),
      tag(0, c.encodeClientToServer({ type: 'message_req', body: { message: 'x'.repeat(300) } })),
      tag(1, c.encodeServerToClient({ type: 'connect_rsp', body: {} })),
      tag(1, c.encodeServerToClient({ type: 'message_ind', body: { user: 'ü', message: 'hi' } })),
      tag(3, m.encodeServerToClient({ type: 'status_rsp', body: { request_id: 0xffffffff, sid: new Uint8Array(32).fill(7), version: '0.1.0', uptime_ms: 2 ** 40, simulated: true, interfaces: [{ name: 'lora0', kind: 'lora', state: 'up', mtu: 508, bit_rate: 5470, airtime: [{ name: 'EU868 g1', window_ms: 3.6e6, used_ms: 1.5, left_ms: -0.25 }], frames_sent: 1 }] } })),
      tag(3, m.encodeServerToClient({ type: 'neighbours_rsp', body: { request_id: 1, neighbours: [{ sid: new Uint8Array(32), interface: 'a', symmetric: true, in_ratio: 0.5, out_ratio: 1, has_rssi: true, rssi_dbm: -120.5, snr_db: -7.25, last_heard_ms_ago: 0 }] } })),
      tag(3, m.encodeServerToClient({ type: 'error_rsp', body: { request_id: 9, code: 'too-large', message: 'm', max_bytes: 4194304 } })),
      tag(3, m.encodeServerToClient({ type: 'event_ind', body: { event: 'airtime-low', left_percent: Number.MIN_VALUE, at_ms: Number.MAX_SAFE_INTEGER } })),
      tag(3, m.encodeServerToClient({ type: 'auth_rsp', body: {} })),
      tag(2, m.encodeClientToServer({ type: 'subscribe_req', body: { request_id: 3, events: ['neighbour-up', 'none', ''], airtime_low_percent: 12.5 } })),
    ];
  },
  one(input) {
    if (input.length === 0) return;
    const k = input[0]! & 3;
    const protocol = k < 2 ? chat() : meshgwProtocol();
    const direction: MessiDirection = (k & 1) === 0 ? 'client-to-server' : 'server-to-client';
    decodeChecked(protocol, direction, input.subarray(1));
  },
};

// ── api-message ─────────────────────────────────────────────────────────────────────────────────

interface ApiState {
  conn: MessiServerConnection;
  now: number;
}

const sid = new Uint8Array(32).map((_, i) => i);

const apiSamples: MessiMessage[] = [
  { type: 'auth_req', body: { token: 'secret-token' } },
  { type: 'status_req', body: { request_id: 1 } },
  { type: 'neighbours_req', body: {} },
  { type: 'routes_req', body: { request_id: 0xffffffff } },
  { type: 'subscribe_req', body: { request_id: 2, events: ['neighbour-up', 'route-changed'], airtime_low_percent: 5 } },
  { type: 'ping_req', body: { request_id: 3, sid, size: 64, timeout_ms: 0 } },
  { type: 'stream_open_req', body: { request_id: 4, sid, port: 255, interactive: true, fec: 'auto', credit: 65536 } },
  { type: 'stream_listen_req', body: { request_id: 5, port: 1, fec: '', credit: 0 } },
  { type: 'stream_unlisten_req', body: { request_id: 6, port: 7 } },
  { type: 'stream_data', body: { stream_id: 1, data: new Uint8Array(1000).fill(0xab) } },
  { type: 'stream_credit', body: { stream_id: 1, bytes: 0xffffffff } },
  { type: 'stream_shutdown', body: { stream_id: 2 } },
  { type: 'stream_close', body: { stream_id: 0 } },
  { type: 'datagram_bind_req', body: { request_id: 7, port: 0 } },
  { type: 'datagram_unbind_req', body: { request_id: 8, port: 9 } },
  { type: 'datagram_send_req', body: { request_id: 9, port: 9, sid, remote_port: 10, data: Uint8Array.of(0, 1, 2), interactive: false } },
  { type: 'strokkur_send_req', body: { request_id: 10, sid, port: 11, data: new Uint8Array(3000).map((_, i) => i), redundancy: 3 } },
  { type: 'strokkur_listen_req', body: { request_id: 11, port: 12 } },
  { type: 'strokkur_unlisten_req', body: { request_id: 12, port: 12 } },
];

export const apiMessageTarget: FuzzTarget<ApiState> = {
  name: 'api-message',
  maxLength: 4096,
  corpus: () => {
    const api = meshgwProtocol();
    const frames = apiSamples.map((m) => encodeKind('current', 'client-to-server', api.encodeClientToServer(m)));
    const seed = apiSamples.slice(0, 4).map((m) => encodeKind('seed', 'client-to-server', api.encodeClientToServer(m)));
    return [
      ...frames,
      ...seed,
      encodeKind('current', 'ping'),
      new Uint8Array([...frames[0]!, ...encodeKind('current', 'ping'), ...frames[5]!, ...frames[9]!]),
      // A header announcing the largest frame the API takes, and one byte more.
      Uint8Array.of(1, (API_MAX_FRAME_BYTES >> 16) & 0xff, (API_MAX_FRAME_BYTES >> 8) & 0xff, API_MAX_FRAME_BYTES & 0xff, 0x0a, 0x00),
      Uint8Array.of(1, ((API_MAX_FRAME_BYTES + 1) >> 16) & 0xff, ((API_MAX_FRAME_BYTES + 1) >> 8) & 0xff, (API_MAX_FRAME_BYTES + 1) & 0xff),
    ];
  },
  setup: () => ({ conn: new MessiServerConnection(0, { protocol: meshgwProtocol(), maxFrame: API_MAX_FRAME_BYTES }), now: 0 }),
  one(input, state, rng) {
    const api = meshgwProtocol();
    // A connection per input, as a new client's bytes (the server drops a client at its first fault).
    state.conn = new MessiServerConnection(state.now, { protocol: api, maxFrame: API_MAX_FRAME_BYTES });
    const conn = state.conn;
    let closed = false;
    for (const piece of chunks(input, rng)) {
      for (const e of conn.receive(piece, state.now)) {
        invariant(!closed, 'an event after the disconnect');
        if (e.type === 'disconnect') {
          closed = true;
          invariant(typeof e.detail === 'string' && e.detail.length > 0, `disconnect ${e.reason} without a detail`);
          invariant(['message-too-big', 'message-decode-error', 'unknown-type', 'truncated'].includes(e.reason), `disconnect for ${e.reason}`);
          continue;
        }
        roundTrip(api, 'client-to-server', e.message);
      }
      invariant(conn.pendingBytes <= input.length * 2 + 64, `${conn.pendingBytes} bytes of output for a ${input.length}-byte input`);
      for (const out of conn.takeOutput()) invariant(out.length === HEADER_SIZE[conn.version!], 'the server wrote something other than an empty pong');
    }
    state.now += 10;
    // The payload alone (past a current header), through the API's codec as the server decodes it.
    if (input.length > 4) decodeChecked(api, 'client-to-server', input.subarray(4));
  },
};
