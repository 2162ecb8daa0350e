/**
 * The Messi TypeScript generator: a .proto text in, TypeScript module sources out.
 *
 * The .proto must declare the two top-level messages Messi builds on, `ClientToServer` and
 * `ServerToClient`, each holding exactly one `oneof` whose members are the protocol's messages
 * (every member a message type). For package `chat` the generator writes three modules:
 *
 *   chat-messages.ts  an interface per message of the .proto, enums, `initX()` helpers, the
 *                     unions `ChatClientToServer` / `ChatServerToClient` (`{ type, body }`), and
 *                     the .proto text itself with `chatProtocol()` (so an app needs no .proto
 *                     file at run time);
 *   chat-client.ts    class `ChatClient` (start/stop/send/sendX, onConnected/onDisconnected/onX);
 *   chat-server.ts    class `ChatServer` (start/stop/broadcast/send/reply/disconnect,
 *                     onClientConnected/onClientDisconnected/onX(client, message)).
 *
 * The generated code imports only the meshgw runtime (`meshgw/messi`) and compiles under
 * `tsc --strict`. This module does no IO and does not depend on the runtime: it is a pure
 * function from text to text, and every problem with the input is one `MessiGenerateError`
 * whose message is the one line `file:line: problem`.
 */
import protobuf from 'protobufjs';

/** A .proto the generator refuses; `message` is the single line `file:line: problem`. */
export class MessiGenerateError extends Error {
  override readonly name = 'MessiGenerateError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
  }
}

export interface MessiGenerateOptions {
  /** The .proto's file name, used in error messages and embedded in the generated code. Default 'messi.proto'. */
  file?: string;
  /** The module the generated code imports the runtime from. Default 'meshgw/messi'. */
  runtimeModule?: string;
}

export interface MessiGeneratedFile {
  /** File name relative to the output directory, e.g. 'chat-client.ts'. */
  name: string;
  text: string;
}

export interface MessiGenerated {
  /** The base of the file names (the package with dots as '_', or the .proto's base name). */
  base: string;
  /** The class prefix, e.g. 'Chat' for ChatClient / ChatServer. */
  prefix: string;
  messages: MessiGeneratedFile;
  client: MessiGeneratedFile;
  server: MessiGeneratedFile;
  /** messages, client, server. */
  files: MessiGeneratedFile[];
}

/** One member of the ClientToServer or ServerToClient oneof. */
export interface MessiOneofMember {
  /** The .proto name, e.g. 'connect_req' (the runtime's `MessiMessage.type`). */
  name: string;
  /** PascalCase of `name`, e.g. 'ConnectReq' (in sendConnectReq, onConnectReq, ...). */
  pascal: string;
  /** The TypeScript name of the member's message type. */
  typeName: string;
}

export interface MessiFieldModel {
  name: string;
  /** TypeScript type of the property (without `?`/`| null`). */
  ts: string;
  /** Default value expression for initX(), or undefined when the property is left out. */
  init: string | undefined;
  optional: boolean;
  nullable: boolean;
  comment: string;
}

export interface MessiMessageModel {
  tsName: string;
  protoName: string;
  fields: MessiFieldModel[];
}

export interface MessiEnumModel {
  tsName: string;
  protoName: string;
  values: [string, number][];
}

export interface MessiProtoModel {
  file: string;
  package: string | undefined;
  base: string;
  prefix: string;
  clientToServer: MessiOneofMember[];
  serverToClient: MessiOneofMember[];
  messages: MessiMessageModel[];
  enums: MessiEnumModel[];
}

const SCALARS: Record<string, { ts: string; init: string }> = {
  double: { ts: 'number', init: '0' },
  float: { ts: 'number', init: '0' },
  int32: { ts: 'number', init: '0' },
  uint32: { ts: 'number', init: '0' },
  sint32: { ts: 'number', init: '0' },
  fixed32: { ts: 'number', init: '0' },
  sfixed32: { ts: 'number', init: '0' },
  // 64-bit integers travel as JavaScript numbers (exact up to 2^53; the runtime decodes longs as numbers).
  int64: { ts: 'number', init: '0' },
  uint64: { ts: 'number', init: '0' },
  sint64: { ts: 'number', init: '0' },
  fixed64: { ts: 'number', init: '0' },
  sfixed64: { ts: 'number', init: '0' },
  bool: { ts: 'boolean', init: 'false' },
  string: { ts: 'string', init: "''" },
  bytes: { ts: 'Uint8Array', init: 'new Uint8Array(0)' },
};

/** Names a generated type must not take: TypeScript keywords and the globals the generated code uses. */
const RESERVED = new Set([
  'any', 'as', 'boolean', 'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'declare', 'default',
  'delete', 'do', 'else', 'enum', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'implements',
  'import', 'in', 'instanceof', 'interface', 'let', 'never', 'new', 'null', 'number', 'object', 'package', 'private',
  'protected', 'public', 'return', 'static', 'string', 'super', 'switch', 'symbol', 'this', 'throw', 'true', 'try',
  'type', 'typeof', 'undefined', 'unknown', 'var', 'void', 'while', 'with', 'yield', 'await', 'async', 'of',
  'Uint8Array', 'Record', 'Partial', 'Promise', 'Error', 'Object', 'Array', 'String', 'Number', 'Boolean',
  'MessiClient', 'MessiServer', 'MessiMessage', 'MessiProtocol', 'MessiClientOptions', 'MessiServerOptions', 'MessiClientHandle', 'loadProtocol',
]);

/** snake_case (or camelCase) → PascalCase: 'connect_req' → 'ConnectReq'. */
export function pascalCase(name: string): string {
  return name
    .split(/_+/)
    .filter((p) => p !== '')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}

/**
 * The .proto text with comments blanked out (newlines kept, so offsets and line numbers stay
 * right) and string literals left alone.
 */
function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const n = text[i + 1];
    if (c === '/' && n === '/') {
      while (i < text.length && text[i] !== '\n') {
        out += ' ';
        i++;
      }
    } else if (c === '/' && n === '*') {
      out += '  ';
      i += 2;
      while (i < text.length && !(text[i] === '*' && text[i + 1] === '/')) {
        out += text[i] === '\n' ? '\n' : ' ';
        i++;
      }
      if (i < text.length) {
        out += '  ';
        i += 2;
      }
    } else if (c === '"' || c === "'") {
      out += c;
      i++;
      while (i < text.length && text[i] !== c && text[i] !== '\n') {
        if (text[i] === '\\' && i + 1 < text.length) {
          out += text[i]!;
          i++;
        }
        out += text[i]!;
        i++;
      }
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Line of the `nth` (0-based) match of `re` in the comment-free text, or undefined. */
function findLine(code: string, re: RegExp, nth = 0): number | undefined {
  const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
  let m: RegExpExecArray | null;
  let k = 0;
  while ((m = g.exec(code)) !== null) {
    if (k === nth) return lineAt(code, m.index);
    k++;
    if (m[0] === '') g.lastIndex++;
  }
  return undefined;
}

/** Where a protobufjs error without a line number most likely points. */
function guessLine(code: string, message: string): number {
  // "... in Type .chat.M": search from that message's declaration on.
  const scope = /\bin (?:Type|Enum) \.?([\w.]+)/.exec(message);
  const scopeName = scope?.[1]?.split('.').pop();
  let from = 0;
  if (scopeName !== undefined) {
    const m = new RegExp(`\\b(message|enum)\\s+${escapeRegExp(scopeName)}\\b`).exec(code);
    if (m) from = m.index;
  }
  const within = (re: RegExp, nth = 0): number | undefined => {
    const line = findLine(code.slice(from), re, nth);
    return line === undefined ? undefined : line + lineAt(code, from) - 1;
  };
  let m = /^duplicate name '([^']+)'/.exec(message);
  if (m) {
    const name = escapeRegExp(m[1]!);
    const re = new RegExp(`(\\b${name}\\s*=\\s*\\d)|((message|enum|oneof|service)\\s+${name}\\b)`);
    return within(re, 1) ?? within(re) ?? 1;
  }
  m = /^duplicate id (\d+)/.exec(message);
  if (m) {
    const re = new RegExp(`=\\s*${m[1]!}\\b`);
    return within(re, 1) ?? within(re) ?? 1;
  }
  m = /'([^']+)'/.exec(message);
  if (m) {
    const last = m[1]!.split('.').filter((p) => p !== '').pop();
    if (last !== undefined) return within(new RegExp(`\\b${escapeRegExp(last)}\\b`)) ?? findLine(code, new RegExp(`\\b${escapeRegExp(last)}\\b`)) ?? 1;
  }
  return scopeName !== undefined && from > 0 ? lineAt(code, from) : 1;
}

function messageLine(code: string, name: string): number {
  return findLine(code, new RegExp(`\\bmessage\\s+${escapeRegExp(name)}\\b`)) ?? 1;
}

function isSyntheticOneof(o: protobuf.OneOf): boolean {
  const only = o.fieldsArray.length === 1 ? o.fieldsArray[0] : undefined;
  return only !== undefined && (only.options as Record<string, unknown> | undefined)?.['proto3_optional'] === true;
}

/**
 * Parses and checks a .proto for the generator. Throws MessiGenerateError (`file:line: problem`)
 * for a malformed .proto, imports (the generated code embeds one self-contained file), or
 * ClientToServer / ServerToClient missing or not holding exactly one oneof of message types.
 */
export function parseMessiProto(text: string, file = 'messi.proto'): MessiProtoModel {
  const code = stripComments(text);
  const fail = (line: number, problem: string): never => {
    throw new MessiGenerateError(file, line, problem);
  };

  let parsed: protobuf.IParserResult;
  try {
    parsed = protobuf.parse(text, { keepCase: true });
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
    const m = /^(.*?)\s*\((?:[^()]*, )?line (\d+)\)$/.exec(message);
    if (m) fail(Number(m[2]), m[1]!);
    fail(guessLine(code, message), message);
    throw new Error('unreachable');
  }
  const imports = [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])];
  if (imports.length > 0) {
    const line = findLine(code, /\bimport\b/) ?? 1;
    fail(line, `imports are not supported (import "${imports[0]!}"): the generated code embeds one self-contained .proto`);
  }
  const root = parsed.root;
  try {
    root.resolveAll();
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
    fail(guessLine(code, message), message);
  }

  const pkg = parsed.package;
  const scope: protobuf.Namespace = pkg === undefined ? root : (root.lookup(pkg) as protobuf.Namespace | null) ?? root;
  const prefixOf = scope === root ? '.' : `${scope.fullName}.`;
  const tsNameOf = (obj: protobuf.ReflectionObject): string => {
    const full = obj.fullName.startsWith(prefixOf) ? obj.fullName.slice(prefixOf.length) : obj.fullName.replace(/^\./, '');
    return full.replace(/\./g, '_');
  };

  // Every message and enum in the file, in declaration order (nested ones after their parent).
  const types: protobuf.Type[] = [];
  const enums: protobuf.Enum[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const n of ns.nestedArray) {
      if (n instanceof protobuf.Type) {
        types.push(n);
        walk(n);
      } else if (n instanceof protobuf.Enum) {
        enums.push(n);
      } else if (n instanceof protobuf.Namespace && !(n instanceof protobuf.Service)) {
        walk(n);
      }
    }
  };
  walk(scope);

  const taken = new Map<string, string>();
  for (const t of [...types, ...enums]) {
    const ts = tsNameOf(t);
    const protoName = t.fullName.replace(/^\./, '');
    const line = t instanceof protobuf.Type ? messageLine(code, t.name) : findLine(code, new RegExp(`\\benum\\s+${escapeRegExp(t.name)}\\b`)) ?? 1;
    if (RESERVED.has(ts)) fail(line, `the name '${protoName}' clashes with a TypeScript name the generated code uses; rename it`);
    const other = taken.get(ts);
    if (other !== undefined) fail(line, `'${protoName}' and '${other}' would both be the TypeScript type ${ts}; rename one`);
    taken.set(ts, protoName);
  }

  const topLevel = (name: string): protobuf.Type | undefined => {
    const t = scope.get(name);
    return t instanceof protobuf.Type ? t : undefined;
  };
  const members = (name: 'ClientToServer' | 'ServerToClient'): MessiOneofMember[] => {
    const t = topLevel(name);
    if (t === undefined) {
      return fail(1, `no top-level message ${name}${pkg === undefined ? '' : ` in package ${pkg}`}: a Messi protocol needs ClientToServer and ServerToClient, each with one oneof of its messages`);
    }
    const line = messageLine(code, name);
    const oneofs = t.oneofsArray.filter((o) => !isSyntheticOneof(o));
    if (oneofs.length !== 1) fail(line, `message ${name} must hold exactly one oneof listing the protocol's messages, it has ${oneofs.length}`);
    const oneof = oneofs[0]!;
    const stray = t.fieldsArray.find((f) => f.partOf !== oneof);
    if (stray !== undefined) {
      fail(findLine(code, new RegExp(`\\b${escapeRegExp(stray.name)}\\s*=`)) ?? line, `message ${name} must hold only its oneof, but field '${stray.name}' is outside it`);
    }
    if (oneof.fieldsArray.length === 0) fail(line, `the oneof ${oneof.name} of ${name} lists no messages`);
    const out: MessiOneofMember[] = [];
    const pascals = new Map<string, string>();
    for (const f of [...oneof.fieldsArray].sort((a, b) => a.id - b.id)) {
      const fline = findLine(code, new RegExp(`\\b${escapeRegExp(f.name)}\\s*=\\s*${f.id}\\b`)) ?? line;
      if (!(f.resolvedType instanceof protobuf.Type)) fail(fline, `oneof member '${f.name}' of ${name} must be a message type, not ${f.type}`);
      const pascal = pascalCase(f.name);
      if (pascal === '') fail(fline, `oneof member '${f.name}' of ${name} has no usable name`);
      const other = pascals.get(pascal);
      if (other !== undefined) fail(fline, `oneof members '${f.name}' and '${other}' of ${name} would both be named ${pascal}`);
      pascals.set(pascal, f.name);
      out.push({ name: f.name, pascal, typeName: tsNameOf(f.resolvedType as protobuf.Type) });
    }
    return out;
  };
  const clientToServer = members('ClientToServer');
  const serverToClient = members('ServerToClient');

  const base = (pkg ?? file.replace(/^.*[\\/]/, '').replace(/\.proto$/i, '')).replace(/[^A-Za-z0-9_]+/g, '_');
  const prefix = pascalCase(base).replace(/^(\d)/, '_$1') || 'Messi';

  // Generated names that must not collide with the message types (or each other).
  const fixedClient = ['onConnected', 'onDisconnected'];
  const fixedServer = ['onClientConnected', 'onClientDisconnected'];
  for (const [list, fixed, side] of [
    [serverToClient, fixedClient, 'ServerToClient'],
    [clientToServer, fixedServer, 'ClientToServer'],
  ] as const) {
    for (const m of list) {
      if (fixed.includes(`on${m.pascal}`)) {
        fail(messageLine(code, side), `oneof member '${m.name}' of ${side} would make on${m.pascal}, which is the generated ${fixed.join('/')} event; rename it`);
      }
    }
  }
  const generatedNames = [
    `${prefix}Client`, `${prefix}ClientOptions`, `${prefix}Server`, `${prefix}ServerOptions`, `${prefix}ServerClient`,
    `${prefix}ClientToServer`, `${prefix}ServerToClient`, `${upperSnake(base)}_PROTO`, `${upperSnake(base)}_PROTO_FILE`, `${lowerFirst(prefix)}Protocol`,
  ];
  for (const t of [...types, ...enums]) {
    const ts = tsNameOf(t);
    if (generatedNames.includes(ts) || (t instanceof protobuf.Type && taken.has(`init${ts}`))) {
      fail(t instanceof protobuf.Type ? messageLine(code, t.name) : 1, `the name '${t.fullName.replace(/^\./, '')}' clashes with a generated name; rename it`);
    }
  }

  const fieldModel = (f: protobuf.Field): MessiFieldModel => {
    const scalarOf = (type: string, resolved: protobuf.Type | protobuf.Enum | null): { ts: string; init: string | undefined } => {
      if (resolved instanceof protobuf.Type) return { ts: tsNameOf(resolved), init: undefined };
      if (resolved instanceof protobuf.Enum) {
        const first = Object.values(resolved.values)[0] ?? 0;
        return { ts: tsNameOf(resolved), init: String(first) };
      }
      const s = SCALARS[type];
      if (s === undefined) return fail(findLine(code, new RegExp(`\\b${escapeRegExp(f.name)}\\s*=`)) ?? 1, `unsupported field type '${type}' of field '${f.name}'`);
      return s;
    };
    const protoType = `${f.repeated ? 'repeated ' : ''}${f instanceof protobuf.MapField ? `map<${f.keyType}, ${f.type}>` : f.type}`;
    const comment = `${protoType} ${f.name} = ${f.id}`;
    if (f instanceof protobuf.MapField) {
      const v = scalarOf(f.type, f.resolvedType);
      return { name: f.name, ts: `Record<string, ${v.ts}>`, init: '{}', optional: false, nullable: false, comment };
    }
    const v = scalarOf(f.type, f.resolvedType);
    if (f.repeated) return { name: f.name, ts: `${v.ts}[]`, init: '[]', optional: false, nullable: false, comment };
    if (f.partOf !== null) return { name: f.name, ts: v.ts, init: undefined, optional: true, nullable: false, comment };
    if (f.resolvedType instanceof protobuf.Type) return { name: f.name, ts: v.ts, init: undefined, optional: true, nullable: true, comment };
    return { name: f.name, ts: v.ts, init: v.init, optional: false, nullable: false, comment };
  };

  return {
    file,
    package: pkg,
    base,
    prefix,
    clientToServer,
    serverToClient,
    messages: types.map((t) => ({ tsName: tsNameOf(t), protoName: t.fullName.replace(/^\./, ''), fields: t.fieldsArray.map(fieldModel) })),
    enums: enums.map((e) => ({
      tsName: tsNameOf(e),
      protoName: e.fullName.replace(/^\./, ''),
      values: Object.entries(e.values),
    })),
  };
}

function upperSnake(base: string): string {
  return base.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function propName(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

function header(model: MessiProtoModel, what: string): string {
  const file = model.file.replace(/^.*[\\/]/, '');
  return `// ${what}\n// Generated by \`meshgw messi generate\` from ${file}. Do not edit: regenerate.\n`;
}

function importList(names: Iterable<string>, types: Iterable<string>): string {
  const values = [...new Set(names)].sort();
  const typeNames = [...new Set(types)].filter((t) => !values.includes(t)).sort();
  return [...values, ...typeNames.map((t) => `type ${t}`)].join(', ');
}

function unionOf(list: MessiOneofMember[], name: string, doc: string): string {
  const lines = [`/** ${doc} */`, `export type ${name} =`];
  for (const m of list) lines.push(`  | { type: '${m.name}'; body: ${m.typeName} }`);
  return lines.join('\n') + ';\n';
}

type Model = MessiProtoModel & { fileText: string };

function generateMessages(model: Model, runtime: string): string {
  const P = upperSnake(model.base);
  const file = model.file.replace(/^.*[\\/]/, '');
  const out: string[] = [header(model, `Messages of the Messi protocol ${model.package ?? model.base}.`)];
  out.push(`import { loadProtocol, type MessiProtocol } from '${runtime}';\n`);
  out.push(`/** The .proto this module was generated from, embedded so an app needs no .proto file at run time. */`);
  out.push(`export const ${P}_PROTO_FILE = ${JSON.stringify(file)};`);
  out.push(`export const ${P}_PROTO = ${JSON.stringify(model.fileText)};\n`);
  out.push(`let protocol: MessiProtocol | undefined;\n`);
  out.push(`/** The protocol, loaded once from the embedded .proto. */`);
  out.push(`export function ${lowerFirst(model.prefix)}Protocol(): MessiProtocol {`);
  out.push(`  protocol ??= loadProtocol({ text: ${P}_PROTO, file: ${P}_PROTO_FILE });`);
  out.push(`  return protocol;`);
  out.push(`}\n`);
  for (const e of model.enums) {
    out.push(`/** enum ${e.protoName}: the values by name. Fields of this enum hold the number (unknown values stay numbers). */`);
    out.push(`export const ${e.tsName} = {`);
    for (const [k, v] of e.values) out.push(`  ${propName(k)}: ${v},`);
    out.push(`} as const;`);
    out.push(`export type ${e.tsName} = number;\n`);
  }
  for (const m of model.messages) {
    out.push(`/** message ${m.protoName} */`);
    if (m.fields.length === 0) {
      out.push(`export interface ${m.tsName} {}\n`);
    } else {
      out.push(`export interface ${m.tsName} {`);
      for (const f of m.fields) {
        out.push(`  /** ${f.comment} */`);
        out.push(`  ${propName(f.name)}${f.optional ? '?' : ''}: ${f.ts}${f.nullable ? ' | null' : ''};`);
      }
      out.push(`}\n`);
    }
    const inits = m.fields.filter((f) => f.init !== undefined);
    out.push(`/** A ${m.protoName} with every field at its default, then \`fields\` on top (the seed's init_<message>). */`);
    out.push(`export function init${m.tsName}(fields: Partial<${m.tsName}> = {}): ${m.tsName} {`);
    if (inits.length === 0) out.push(`  return { ...fields };`);
    else out.push(`  return { ${inits.map((f) => `${propName(f.name)}: ${f.init}`).join(', ')}, ...fields };`);
    out.push(`}\n`);
  }
  out.push(unionOf(model.clientToServer, `${model.prefix}ClientToServer`, 'A message a client sends: the ClientToServer oneof member by its .proto name, and its body.'));
  out.push(unionOf(model.serverToClient, `${model.prefix}ServerToClient`, 'A message a server sends: the ServerToClient oneof member by its .proto name, and its body.'));
  return out.join('\n');
}

function generateClient(model: Model, runtime: string): string {
  const X = model.prefix;
  const mod = `./${model.base}-messages.js`;
  const values = [`${lowerFirst(X)}Protocol`, ...model.clientToServer.map((m) => `init${m.typeName}`)];
  const types = [`${X}ClientToServer`, ...model.clientToServer.map((m) => m.typeName), ...model.serverToClient.map((m) => m.typeName)];
  const o: string[] = [header(model, `Messi client of the protocol ${model.package ?? model.base}.`)];
  o.push(`import { MessiClient, type MessiClientOptions, type MessiMessage } from '${runtime}';`);
  o.push(`import { ${importList(values, types)} } from '${mod}';\n`);
  o.push(`/** The runtime client's options (host, port, version, pingIntervalMs, …) without the protocol. */`);
  o.push(`export type ${X}ClientOptions = Omit<MessiClientOptions, 'protocol'>;\n`);
  o.push(`/**`);
  o.push(` * A client of ${model.package ?? model.base}: connects on start() and reconnects after every`);
  o.push(` * disconnect until stop(). Set the on… properties to handle events.`);
  o.push(` */`);
  o.push(`export class ${X}Client {`);
  o.push(`  /** Connected to the server (seed: on_connected). */`);
  o.push(`  onConnected: () => void = () => {};`);
  o.push(`  /** The connection is gone; a reconnect follows unless stopped (seed: on_disconnected). */`);
  o.push(`  onDisconnected: (reason: string) => void = () => {};`);
  for (const m of model.serverToClient) {
    o.push(`  /** The server sent ${m.name} (seed: on_${m.name}). */`);
    o.push(`  on${m.pascal}: (message: ${m.typeName}) => void = () => {};`);
  }
  o.push(`  /** The runtime client underneath. */`);
  o.push(`  readonly runtime: MessiClient;\n`);
  o.push(`  constructor(options: ${X}ClientOptions) {`);
  o.push(`    this.runtime = new MessiClient({ ...options, protocol: ${lowerFirst(X)}Protocol() });`);
  o.push(`    this.runtime.on('connected', () => this.onConnected());`);
  o.push(`    this.runtime.on('disconnected', (reason: string) => this.onDisconnected(reason));`);
  o.push(`    this.runtime.on('message', (message: MessiMessage) => this.dispatch(message));`);
  o.push(`  }\n`);
  o.push(`  get connected(): boolean {`);
  o.push(`    return this.runtime.connected;`);
  o.push(`  }\n`);
  o.push(`  /** Connects, and keeps reconnecting until stop() (seed: start). */`);
  o.push(`  start(): void {`);
  o.push(`    this.runtime.start();`);
  o.push(`  }\n`);
  o.push(`  /** Disconnects and stops reconnecting (seed: stop). */`);
  o.push(`  async stop(): Promise<void> {`);
  o.push(`    await this.runtime.stop();`);
  o.push(`  }\n`);
  o.push(`  /** Sends one message; false when not connected (seed: send). */`);
  o.push(`  send(message: ${X}ClientToServer): boolean {`);
  o.push(`    return this.runtime.send(message as unknown as MessiMessage);`);
  o.push(`  }\n`);
  for (const m of model.clientToServer) {
    o.push(`  /** Sends ${m.name}, its fields at their defaults except \`message\` (seed: init_${m.name} + send). */`);
    o.push(`  send${m.pascal}(message: Partial<${m.typeName}> = {}): boolean {`);
    o.push(`    return this.send({ type: '${m.name}', body: init${m.typeName}(message) });`);
    o.push(`  }\n`);
  }
  o.push(`  private dispatch(message: MessiMessage): void {`);
  o.push(`    switch (message.type) {`);
  for (const m of model.serverToClient) {
    o.push(`      case '${m.name}':`);
    o.push(`        this.on${m.pascal}(message.body as unknown as ${m.typeName});`);
    o.push(`        break;`);
  }
  o.push(`      default:`);
  o.push(`        break;`);
  o.push(`    }`);
  o.push(`  }`);
  o.push(`}\n`);
  return o.join('\n');
}

function generateServer(model: Model, runtime: string): string {
  const X = model.prefix;
  const mod = `./${model.base}-messages.js`;
  const values = [`${lowerFirst(X)}Protocol`, ...model.serverToClient.map((m) => `init${m.typeName}`)];
  const types = [`${X}ServerToClient`, ...model.clientToServer.map((m) => m.typeName), ...model.serverToClient.map((m) => m.typeName)];
  const o: string[] = [header(model, `Messi server of the protocol ${model.package ?? model.base}.`)];
  o.push(`import { MessiServer, type MessiClientHandle, type MessiMessage, type MessiServerOptions } from '${runtime}';`);
  o.push(`import { ${importList(values, types)} } from '${mod}';\n`);
  o.push(`/** A connected client, as the server's events and send/disconnect name it. */`);
  o.push(`export type ${X}ServerClient = MessiClientHandle;\n`);
  o.push(`/** Where to listen, and the runtime server's options (maxFrameBytes, clientTimeoutMs, …) without the protocol. */`);
  o.push(`export interface ${X}ServerOptions extends Omit<MessiServerOptions, 'protocol'> {`);
  o.push(`  /** TCP port; 0 for an ephemeral one (start() returns it). */`);
  o.push(`  port: number;`);
  o.push(`  host?: string;`);
  o.push(`}\n`);
  o.push(`/** A server of ${model.package ?? model.base}. Set the on… properties to handle events. */`);
  o.push(`export class ${X}Server {`);
  o.push(`  /** A client connected (seed: on_client_connected). */`);
  o.push(`  onClientConnected: (client: ${X}ServerClient) => void = () => {};`);
  o.push(`  /** A client is gone (seed: on_client_disconnected). */`);
  o.push(`  onClientDisconnected: (client: ${X}ServerClient, reason: string) => void = () => {};`);
  for (const m of model.clientToServer) {
    o.push(`  /** A client sent ${m.name}; reply…() inside answers it (seed: on_${m.name}). */`);
    o.push(`  on${m.pascal}: (client: ${X}ServerClient, message: ${m.typeName}) => void = () => {};`);
  }
  o.push(`  /** The runtime server underneath. */`);
  o.push(`  readonly runtime: MessiServer;`);
  o.push(`  private readonly port: number;`);
  o.push(`  private readonly host: string | undefined;`);
  o.push(`  private current: ${X}ServerClient | undefined;\n`);
  o.push(`  constructor(options: ${X}ServerOptions) {`);
  o.push(`    const { port, host, ...rest } = options;`);
  o.push(`    this.port = port;`);
  o.push(`    this.host = host;`);
  o.push(`    this.runtime = new MessiServer({ ...rest, protocol: ${lowerFirst(X)}Protocol() });`);
  o.push(`    this.runtime.on('client-connected', (client: ${X}ServerClient) => this.onClientConnected(client));`);
  o.push(`    this.runtime.on('client-disconnected', (client: ${X}ServerClient, reason: string) => this.onClientDisconnected(client, reason));`);
  o.push(`    this.runtime.on('message', (client: ${X}ServerClient, message: MessiMessage) => this.dispatch(client, message));`);
  o.push(`  }\n`);
  o.push(`  /** Listens; resolves to the bound address (seed: start). */`);
  o.push(`  start(): Promise<{ port: number; host: string }> {`);
  o.push(`    return this.runtime.listen(this.port, this.host);`);
  o.push(`  }\n`);
  o.push(`  /** Disconnects every client and stops listening (seed: stop). */`);
  o.push(`  async stop(): Promise<void> {`);
  o.push(`    await this.runtime.close();`);
  o.push(`  }\n`);
  o.push(`  /** The clients connected now. */`);
  o.push(`  get clients(): ${X}ServerClient[] {`);
  o.push(`    return this.runtime.clients;`);
  o.push(`  }\n`);
  o.push(`  /** Sends one message to one client; false if it is gone (seed: send). */`);
  o.push(`  send(client: ${X}ServerClient, message: ${X}ServerToClient): boolean {`);
  o.push(`    return this.runtime.send(client, message as unknown as MessiMessage);`);
  o.push(`  }\n`);
  o.push(`  /** Sends one message to every client (seed: broadcast). */`);
  o.push(`  broadcast(message: ${X}ServerToClient): void {`);
  o.push(`    this.runtime.broadcast(message as unknown as MessiMessage);`);
  o.push(`  }\n`);
  o.push(`  /**`);
  o.push(`   * Sends one message to the client whose message is being handled (seed: reply). Only`);
  o.push(`   * synchronously inside an on… message handler; elsewhere use send(client, …).`);
  o.push(`   */`);
  o.push(`  reply(message: ${X}ServerToClient): boolean {`);
  o.push(`    if (this.current === undefined) throw new Error('${X}Server.reply() outside a message handler: use send(client, message)');`);
  o.push(`    return this.send(this.current, message);`);
  o.push(`  }\n`);
  o.push(`  /** Closes one client's connection (seed: disconnect). */`);
  o.push(`  disconnect(client: ${X}ServerClient, reason?: string): void {`);
  o.push(`    this.runtime.disconnect(client, reason);`);
  o.push(`  }\n`);
  for (const m of model.serverToClient) {
    const arg = `message: Partial<${m.typeName}> = {}`;
    const body = `{ type: '${m.name}', body: init${m.typeName}(message) }`;
    o.push(`  /** Sends ${m.name} to one client (seed: init_${m.name} + send). */`);
    o.push(`  send${m.pascal}(client: ${X}ServerClient, ${arg}): boolean {`);
    o.push(`    return this.send(client, ${body});`);
    o.push(`  }\n`);
    o.push(`  /** Sends ${m.name} to every client (seed: init_${m.name} + broadcast). */`);
    o.push(`  broadcast${m.pascal}(${arg}): void {`);
    o.push(`    this.broadcast(${body});`);
    o.push(`  }\n`);
    o.push(`  /** Answers the client being handled with ${m.name} (seed: init_${m.name} + reply). */`);
    o.push(`  reply${m.pascal}(${arg}): boolean {`);
    o.push(`    return this.reply(${body});`);
    o.push(`  }\n`);
  }
  o.push(`  private dispatch(client: ${X}ServerClient, message: MessiMessage): void {`);
  o.push(`    const previous = this.current;`);
  o.push(`    this.current = client;`);
  o.push(`    try {`);
  o.push(`      switch (message.type) {`);
  for (const m of model.clientToServer) {
    o.push(`        case '${m.name}':`);
    o.push(`          this.on${m.pascal}(client, message.body as unknown as ${m.typeName});`);
    o.push(`          break;`);
  }
  o.push(`        default:`);
  o.push(`          break;`);
  o.push(`      }`);
  o.push(`    } finally {`);
  o.push(`      this.current = previous;`);
  o.push(`    }`);
  o.push(`  }`);
  o.push(`}\n`);
  return o.join('\n');
}

/**
 * Generates the messages, client and server modules for a Messi .proto. Throws
 * MessiGenerateError (`file:line: problem`) for a .proto it refuses.
 */
export function generateMessi(text: string, options: MessiGenerateOptions = {}): MessiGenerated {
  const file = options.file ?? 'messi.proto';
  const runtime = options.runtimeModule ?? 'meshgw/messi';
  const model: Model = { ...parseMessiProto(text, file), fileText: text };
  const messages = { name: `${model.base}-messages.ts`, text: generateMessages(model, runtime) };
  const client = { name: `${model.base}-client.ts`, text: generateClient(model, runtime) };
  const server = { name: `${model.base}-server.ts`, text: generateServer(model, runtime) };
  return { base: model.base, prefix: model.prefix, messages, client, server, files: [messages, client, server] };
}
