/**
 * Messi user messages: protobuf through protobufjs, parsed from .proto text at run time.
 *
 * A Messi protocol file declares `ClientToServer` and `ServerToClient`, each one `oneof` (Messi
 * names it `messages`) whose members are the protocol's messages. Here a message is
 * `{ type, body }`: `type` is the oneof member's name as written in the .proto (snake_case,
 * e.g. `connect_req`), `body` the member's fields, also with their .proto names.
 *
 * Wire rules that other Messi peers (pbtools in C, the Python client) rely on:
 *  - a oneof member holding an empty message is still encoded: its tag and a zero length
 *    (`0a 00` for member 1), which is how the receiver knows which message it is;
 *  - proto3 scalars at their default are not encoded (protobufjs does this already).
 *
 * Decoding never throws: malformed bytes give `{ ok: false, error }`.
 */
import protobuf from 'protobufjs';

export interface MessiMessage<Type extends string = string, Body = Record<string, unknown>> {
  /** The oneof member's name, as in the .proto (e.g. `connect_req`). */
  type: Type;
  /**
   * The member's fields by their .proto names. Decoded: every scalar present (defaults filled
   * in), 64-bit integers as numbers, enums as numbers, bytes as Uint8Array, unset message fields
   * null, repeated as arrays, maps as objects.
   */
  body: Body;
}

export type MessiDirection = 'client-to-server' | 'server-to-client';

export type MessiDecodeErrorCode = 'malformed' | 'no-choice';

export interface MessiDecodeError {
  code: MessiDecodeErrorCode;
  /** Offset in the payload where decoding failed, when known. */
  offset: number;
  reason: string;
}

export type MessiDecodeResult = { ok: true; message: MessiMessage } | { ok: false; error: MessiDecodeError };

/** Thrown by `encode` for a message that does not fit the schema (a programming error, not input). */
export class MessiEncodeError extends Error {
  override readonly name = 'MessiEncodeError';
}

export interface MessiProtocolOptions {
  /** Package of the protocol; default: the package that holds a `ClientToServer`. */
  package?: string;
}

interface Side {
  type: protobuf.Type;
  oneof: protobuf.OneOf;
  byId: Map<number, protobuf.Field>;
  byName: Map<string, protobuf.Field>;
}

/** Where a protocol comes from: .proto text (with a file name for messages), or a path to read. */
export type MessiProtocolSource = { text: string; file?: string; package?: string } | { path: string; package?: string };

/** Loads a Messi protocol from .proto text or a file. Throws at start-up if it is not one. */
export function loadProtocol(source: MessiProtocolSource | string): MessiProtocol {
  if (typeof source === 'string') return MessiProtocol.fromSource(source);
  const options = source.package === undefined ? {} : { package: source.package };
  if ('path' in source) return MessiProtocol.load(source.path, options);
  try {
    return MessiProtocol.fromSource(source.text, options);
  } catch (e) {
    if (source.file === undefined) throw e;
    throw new Error(`${source.file}: ${errorText(e)}`, { cause: e });
  }
}

/** One Messi protocol: the two top-level messages and their codecs. */
export class MessiProtocol {
  readonly root: protobuf.Root;
  /** The protocol's package (Messi's protocol name), e.g. `chat`. */
  readonly packageName: string;
  private readonly sides: Record<MessiDirection, Side>;

  private constructor(root: protobuf.Root, options: MessiProtocolOptions) {
    this.root = root;
    const found = options.package ?? findPackage(root);
    this.packageName = found;
    const prefix = found === '' ? '' : `${found}.`;
    this.sides = {
      'client-to-server': side(root, `${prefix}ClientToServer`),
      'server-to-client': side(root, `${prefix}ServerToClient`),
    };
  }

  /** Parses .proto source text. Throws (at start-up, not for input) if it is not a Messi protocol. */
  static fromSource(source: string, options: MessiProtocolOptions = {}): MessiProtocol {
    const root = protobuf.parse(source, { keepCase: true }).root;
    root.resolveAll();
    return new MessiProtocol(root, options);
  }

  /** Reads and parses a .proto file (imports resolved relative to it). */
  static load(path: string, options: MessiProtocolOptions = {}): MessiProtocol {
    const root = new protobuf.Root();
    root.loadSync(path, { keepCase: true });
    root.resolveAll();
    return new MessiProtocol(root, options);
  }

  /** The protobufjs type of one direction's top-level message. */
  type(direction: MessiDirection): protobuf.Type {
    return this.sides[direction].type;
  }

  /** The oneof member names of one direction, in field-number order. */
  names(direction: MessiDirection): string[] {
    return [...this.sides[direction].byId.entries()].sort((a, b) => a[0] - b[0]).map(([, f]) => f.name);
  }

  encode(direction: MessiDirection, message: MessiMessage): Uint8Array {
    const s = this.sides[direction];
    const field = s.byName.get(message.type);
    if (!field) {
      throw new MessiEncodeError(`${s.type.name} has no message '${String(message.type)}'`);
    }
    const object = { [field.name]: message.body ?? {} };
    const problem = s.type.verify(object);
    if (problem) throw new MessiEncodeError(`${s.type.name}.${message.type}: ${problem}`);
    // fromObject keeps a oneof member that is an empty message: encode writes its tag and a zero length.
    return s.type.encode(s.type.fromObject(object)).finish();
  }

  decode(direction: MessiDirection, payload: Uint8Array): MessiDecodeResult {
    const s = this.sides[direction];
    // Which member is it: the last oneof tag at top level wins (protobuf's rule for a oneof).
    let last: protobuf.Field | undefined;
    const reader = protobuf.Reader.create(payload);
    try {
      while (reader.pos < reader.len) {
        const tag = reader.uint32();
        const id = tag >>> 3;
        if (id === 0) return fail('malformed', reader.pos, 'field number 0');
        const f = s.byId.get(id);
        if (f) last = f;
        reader.skipType(tag & 7);
      }
    } catch (e) {
      return fail('malformed', reader.pos, errorText(e));
    }
    let decoded: protobuf.Message;
    try {
      decoded = s.type.decode(payload);
    } catch (e) {
      return fail('malformed', 0, errorText(e));
    }
    if (!last) return fail('no-choice', 0, `${s.type.name} holds no message`);
    const object = s.type.toObject(decoded, { longs: Number, defaults: true, arrays: true, objects: true });
    const body = object[last.name] as Record<string, unknown> | undefined;
    return { ok: true, message: { type: last.name, body: body ?? {} } };
  }

  encodeClientToServer(message: MessiMessage): Uint8Array {
    return this.encode('client-to-server', message);
  }

  encodeServerToClient(message: MessiMessage): Uint8Array {
    return this.encode('server-to-client', message);
  }

  decodeClientToServer(payload: Uint8Array): MessiDecodeResult {
    return this.decode('client-to-server', payload);
  }

  decodeServerToClient(payload: Uint8Array): MessiDecodeResult {
    return this.decode('server-to-client', payload);
  }
}

function fail(code: MessiDecodeErrorCode, offset: number, reason: string): MessiDecodeResult {
  return { ok: false, error: { code, offset, reason } };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function findPackage(root: protobuf.Root): string {
  const hits: string[] = [];
  const walk = (ns: protobuf.NamespaceBase, path: string): void => {
    for (const child of ns.nestedArray) {
      if (child instanceof protobuf.Type) {
        if (child.name === 'ClientToServer') hits.push(path);
      } else if (child instanceof protobuf.Namespace) {
        walk(child, path === '' ? child.name : `${path}.${child.name}`);
      }
    }
  };
  walk(root, '');
  if (hits.length !== 1) {
    throw new Error(
      hits.length === 0
        ? 'not a Messi protocol: no message ClientToServer'
        : `several packages declare ClientToServer (${hits.join(', ')}): name one`,
    );
  }
  return hits[0]!;
}

function side(root: protobuf.Root, name: string): Side {
  const type = root.lookupType(name);
  const oneof = type.oneofsArray.find((o) => !o.fieldsArray.some((f) => f.options?.['proto3_optional']));
  if (!oneof) throw new Error(`not a Messi protocol: ${name} has no oneof`);
  const byId = new Map<number, protobuf.Field>();
  const byName = new Map<string, protobuf.Field>();
  for (const f of oneof.fieldsArray) {
    byId.set(f.id, f);
    byName.set(f.name, f);
  }
  return { type, oneof, byId, byName };
}
