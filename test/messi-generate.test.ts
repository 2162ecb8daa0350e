/**
 * The Messi TypeScript generator (src/messi/generate.ts) and `meshgw messi generate`: the text
 * it writes, the one-line errors for a .proto it refuses, and that the generated modules
 * type-check under `tsc --strict` against the built runtime types (dist/, which `npm test`
 * builds before vitest runs).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessiGenerateError, generateMessi, parseMessiProto, pascalCase } from '../src/messi/generate.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(root, 'test/fixtures/messi');
const bin = join(root, 'dist/bin/meshgw.js');
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const fixture = (name: string): string => readFileSync(join(fixtures, name), 'utf8');

function meshgw(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The MessiGenerateError a .proto text gets (fails the test if it is accepted). */
function refusal(text: string, file = 'x.proto'): MessiGenerateError {
  try {
    generateMessi(text, { file });
  } catch (err) {
    if (err instanceof MessiGenerateError) return err;
    throw err;
  }
  throw new Error('the generator accepted the .proto');
}

const CHAT_HEAD = `syntax = "proto3";
package chat;
`;

describe('generateMessi on the chat protocol', () => {
  const g = generateMessi(fixture('chat.proto'), { file: 'test/fixtures/messi/chat.proto' });

  it('names three modules after the package', () => {
    expect(g.base).toBe('chat');
    expect(g.prefix).toBe('Chat');
    expect(g.files.map((f) => f.name)).toEqual(['chat-messages.ts', 'chat-client.ts', 'chat-server.ts']);
  });

  it('imports nothing but the meshgw runtime and the sibling messages module', () => {
    for (const f of g.files) {
      const from = [...f.text.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
      expect(from.length, f.name).toBeGreaterThan(0);
      for (const m of from) expect(['meshgw/messi', './chat-messages.js'], `${f.name}: ${m}`).toContain(m);
    }
  });

  it('embeds the .proto text and loads the protocol from it', () => {
    expect(g.messages.text).toContain(`export const CHAT_PROTO = ${JSON.stringify(fixture('chat.proto'))};`);
    expect(g.messages.text).toContain(`export const CHAT_PROTO_FILE = "chat.proto";`);
    expect(g.messages.text).toContain('loadProtocol({ text: CHAT_PROTO, file: CHAT_PROTO_FILE })');
  });

  it('writes an interface and an init helper per message, and the two oneof unions', () => {
    const t = g.messages.text;
    expect(t).toMatch(/export interface ConnectReq \{\n {2}\/\*\* string user = 1 \*\/\n {2}user: string;\n\}/);
    expect(t).toContain('export interface ConnectRsp {}');
    expect(t).toContain("export function initMessageInd(fields: Partial<MessageInd> = {}): MessageInd {\n  return { user: '', text: '', ...fields };");
    expect(t).toContain('export function initConnectRsp(fields: Partial<ConnectRsp> = {}): ConnectRsp {\n  return { ...fields };');
    expect(t).toContain("export type ChatClientToServer =\n  | { type: 'connect_req'; body: ConnectReq }\n  | { type: 'message_ind'; body: MessageInd };");
    expect(t).toContain("export type ChatServerToClient =\n  | { type: 'connect_rsp'; body: ConnectRsp }\n  | { type: 'message_ind'; body: MessageInd };");
  });

  it('gives the client the seed operations as typed methods and callbacks', () => {
    const t = g.client.text;
    for (const s of [
      'export class ChatClient {',
      'onConnected: () => void',
      'onDisconnected: (reason: string) => void',
      'onConnectRsp: (message: ConnectRsp) => void',
      'onMessageInd: (message: MessageInd) => void',
      'start(): void',
      'stop(): Promise<void>',
      'send(message: ChatClientToServer): boolean',
      'sendConnectReq(message: Partial<ConnectReq> = {}): boolean',
      'sendMessageInd(message: Partial<MessageInd> = {}): boolean',
    ]) {
      expect(t).toContain(s);
    }
    // The client receives only ServerToClient members.
    expect(t).not.toContain('onConnectReq');
    expect(t).not.toContain('sendConnectRsp');
  });

  it('gives the server the seed operations as typed methods and callbacks', () => {
    const t = g.server.text;
    for (const s of [
      'export class ChatServer {',
      'onClientConnected: (client: ChatServerClient) => void',
      'onClientDisconnected: (client: ChatServerClient, reason: string) => void',
      'onConnectReq: (client: ChatServerClient, message: ConnectReq) => void',
      'onMessageInd: (client: ChatServerClient, message: MessageInd) => void',
      'start(): Promise<{ port: number; host: string }>',
      'stop(): Promise<void>',
      'send(client: ChatServerClient, message: ChatServerToClient): boolean',
      'broadcast(message: ChatServerToClient): void',
      'reply(message: ChatServerToClient): boolean',
      'disconnect(client: ChatServerClient, reason?: string): void',
      'sendConnectRsp(client: ChatServerClient, message: Partial<ConnectRsp> = {}): boolean',
      'broadcastMessageInd(message: Partial<MessageInd> = {}): void',
      'replyConnectRsp(message: Partial<ConnectRsp> = {}): boolean',
    ]) {
      expect(t).toContain(s);
    }
    expect(t).not.toContain('onConnectRsp');
    expect(t).not.toContain('sendConnectReq');
  });

  it('is deterministic', () => {
    expect(generateMessi(fixture('chat.proto'), { file: 'chat.proto' })).toEqual(generateMessi(fixture('chat.proto'), { file: 'chat.proto' }));
  });
});

describe('generateMessi type mapping', () => {
  const t = generateMessi(fixture('types.proto'), { file: 'types.proto' }).messages.text;
  const iface = (name: string): string => {
    const m = new RegExp(`export interface ${name} \\{\\n([\\s\\S]*?)\\n\\}`).exec(t);
    if (!m) throw new Error(`no interface ${name}`);
    return m[1]!
      .split('\n')
      .filter((l) => !l.includes('/**'))
      .map((l) => l.trim())
      .join(' ');
  };

  it('maps scalars: numbers (64-bit ones too), boolean, string, Uint8Array, enums', () => {
    expect(iface('AllScalars')).toBe(
      'd: number; f: number; i32: number; u32: number; s32: number; f32: number; sf32: number; ' +
        'i64: number; u64: number; s64: number; f64: number; sf64: number; b: boolean; s: string; data: Uint8Array; color: Color;',
    );
    expect(t).toContain(
      "return { d: 0, f: 0, i32: 0, u32: 0, s32: 0, f32: 0, sf32: 0, i64: 0, u64: 0, s64: 0, f64: 0, sf64: 0, b: false, s: '', data: new Uint8Array(0), color: 0, ...fields };",
    );
  });

  it('maps enums to a value table and number', () => {
    expect(t).toContain('export const Color = {\n  RED: 0,\n  GREEN: 1,\n  BLUE: 2,\n} as const;\nexport type Color = number;');
    expect(t).toContain('export const Composite_Shape = {\n  CIRCLE: 0,\n  SQUARE: 1,\n} as const;');
  });

  it('maps nested, repeated, map, optional and oneof fields', () => {
    expect(iface('Composite')).toBe(
      'origin?: Composite_Point | null; points: Composite_Point[]; tags: string[]; counts: Record<string, number>; ' +
        'by_id: Record<string, Composite_Point>; shape: Composite_Shape; note?: string; number?: number; label?: string; child?: Composite | null;',
    );
    expect(t).toContain('return { points: [], tags: [], counts: {}, by_id: {}, shape: 0, ...fields };');
    expect(iface('Composite_Point')).toBe('x: number; y: number;');
  });

  it('names methods after the oneof members, not the types', () => {
    const g = generateMessi(fixture('types.proto'), { file: 'types.proto' });
    expect(g.base).toBe('my_types');
    expect(g.prefix).toBe('MyTypes');
    expect(g.client.text).toContain('sendPing(message: Partial<Empty> = {}): boolean');
    expect(g.client.text).toContain('onPong: (message: Empty) => void');
    expect(g.server.text).toContain('onAllScalars: (client: MyTypesServerClient, message: AllScalars) => void');
    expect(parseMessiProto(fixture('types.proto'), 'types.proto').clientToServer).toEqual([
      { name: 'all_scalars', pascal: 'AllScalars', typeName: 'AllScalars' },
      { name: 'ping', pascal: 'Ping', typeName: 'Empty' },
    ]);
  });

  it('uses the file name when there is no package', () => {
    const text = fixture('chat.proto').replace('package chat;', '');
    const g = generateMessi(text, { file: 'some/dir/talk.proto' });
    expect(g.files.map((f) => f.name)).toEqual(['talk-messages.ts', 'talk-client.ts', 'talk-server.ts']);
    expect(g.client.text).toContain('export class TalkClient {');
  });

  it('pascalCase', () => {
    expect(pascalCase('connect_req')).toBe('ConnectReq');
    expect(pascalCase('messageInd')).toBe('MessageInd');
    expect(pascalCase('a__b_')).toBe('AB');
  });
});

describe('generateMessi refuses a .proto with one line: file:line: problem', () => {
  const cases: [string, number, RegExp][] = [
    ['syntax-error.proto', 7, /illegal token '\}', ';' expected$/],
    ['no-server-to-client.proto', 1, /no top-level message ServerToClient in package chat/],
    ['two-oneofs.proto', 11, /message ServerToClient must hold exactly one oneof .*, it has 2$/],
    ['no-oneof.proto', 5, /message ClientToServer must hold exactly one oneof .*, it has 0$/],
    ['unknown-type.proto', 13, /no such Type or Enum 'ConnectRsp'/],
  ];
  for (const [name, line, problem] of cases) {
    it(name, () => {
      const err = refusal(fixture(name), `test/fixtures/messi/${name}`);
      expect(err.file).toBe(`test/fixtures/messi/${name}`);
      expect(err.line).toBe(line);
      expect(err.problem).toMatch(problem);
      expect(err.message).toBe(`test/fixtures/messi/${name}:${line}: ${err.problem}`);
      expect(err.message).not.toContain('\n');
    });
  }

  const oneofs = (c2s: string, s2c = 'M m = 1;'): string =>
    `${CHAT_HEAD}message ClientToServer {\n  oneof messages {\n    ${c2s}\n  }\n}\nmessage ServerToClient {\n  oneof messages {\n    ${s2c}\n  }\n}\nmessage M {\n  string s = 1;\n}\n`;

  it('a oneof member that is not a message', () => {
    const err = refusal(oneofs('M m = 1;\n    int32 count = 2;'));
    expect(err.message).toBe("x.proto:6: oneof member 'count' of ClientToServer must be a message type, not int32");
  });

  it('a field outside the oneof', () => {
    const err = refusal(`${CHAT_HEAD}message ClientToServer {\n  int32 seq = 3;\n  oneof messages {\n    M m = 1;\n  }\n}\nmessage ServerToClient {\n  oneof messages {\n    M m = 1;\n  }\n}\nmessage M {}\n`);
    expect(err.message).toBe("x.proto:4: message ClientToServer must hold only its oneof, but field 'seq' is outside it");
  });

  it('ClientToServer missing entirely (line 1)', () => {
    expect(refusal(`${CHAT_HEAD}message M {}\n`).message).toMatch(/^x\.proto:1: no top-level message ClientToServer in package chat/);
  });

  it('imports', () => {
    const err = refusal(`syntax = "proto3";\n\nimport "other.proto";\n${oneofs('M m = 1;')}`);
    expect(err.line).toBe(3);
    expect(err.problem).toMatch(/^imports are not supported \(import "other.proto"\)/);
  });

  it('a duplicate field name or number', () => {
    expect(refusal(oneofs('M m = 1;').replace('string s = 1;', 'string s = 1;\n  int32 s = 2;')).message).toBe("x.proto:15: duplicate name 's' in Type M");
    expect(refusal(oneofs('M m = 1;').replace('string s = 1;', 'string s = 1;\n  int32 t = 1;')).message).toBe('x.proto:15: duplicate id 1 in Type M');
  });

  it('names that would collide in the generated code', () => {
    expect(refusal(oneofs('M m = 1;', 'M connected = 1;')).problem).toMatch(/would make onConnected/);
    expect(refusal(oneofs('M m = 1;\n    M m_ = 2;')).problem).toMatch(/'m_' and 'm' of ClientToServer would both be named M/);
    expect(refusal(oneofs('Record m = 1;') + 'message Record {}\n').problem).toMatch(/'chat.Record' clashes with a TypeScript name/);
    expect(refusal(oneofs('M m = 1;') + 'message ChatClient {}\n').problem).toMatch(/'chat.ChatClient' clashes with a generated name/);
  });

  it('never throws anything else, and always one line, whatever the text', () => {
    const alphabet = fc.constantFrom(...'message oneof { } ; = 1 2 ClientToServer ServerToClient M m string " / * \n'.split(' '), ' ', '\n', 'syntax = "proto3";');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 40 }), (parts) => {
        const text = parts.join('');
        try {
          generateMessi(text, { file: 'f.proto' });
        } catch (err) {
          expect(err).toBeInstanceOf(MessiGenerateError);
          const e = err as MessiGenerateError;
          expect(e.message).toMatch(/^f\.proto:\d+: \S/);
          expect(e.message).not.toContain('\n');
          expect(e.line).toBeGreaterThanOrEqual(1);
          expect(e.line).toBeLessThanOrEqual(text.split('\n').length);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('meshgw messi generate', () => {
  it('writes the three modules into --out (creating it) and prints their paths', () => {
    const dir = mkdtempSync(join(tmpdir(), 'messi-cli-'));
    try {
      const out = join(dir, 'a/b');
      const r = meshgw(['messi', 'generate', 'test/fixtures/messi/chat.proto', '--out', out]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const names = ['chat-messages.ts', 'chat-client.ts', 'chat-server.ts'];
      expect(r.stdout.trim().split('\n')).toEqual(names.map((n) => join(out, n)));
      const g = generateMessi(fixture('chat.proto'), { file: 'test/fixtures/messi/chat.proto' });
      for (const f of g.files) expect(readFileSync(join(out, f.name), 'utf8')).toBe(f.text);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a refused .proto: one line with file and line, exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'messi-cli-'));
    try {
      for (const [name, line] of [
        ['syntax-error.proto', 7],
        ['no-server-to-client.proto', 1],
        ['two-oneofs.proto', 11],
      ] as const) {
        const r = meshgw(['messi', 'generate', `test/fixtures/messi/${name}`, '--out', dir]);
        expect(r.code, name).toBe(2);
        const lines = r.stderr.trim().split('\n');
        expect(lines, name).toHaveLength(1);
        expect(lines[0]).toMatch(new RegExp(`^meshgw: test/fixtures/messi/${name.replace('.', '\\.')}:${line}: `));
      }
      expect(existsSync(join(dir, 'chat-client.ts'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('usage errors exit 2 with one line; an unwritable --out exits 1', () => {
    for (const args of [
      ['messi', 'generate', 'test/fixtures/messi/chat.proto'],
      ['messi', 'generate', '--out', '/tmp/x'],
      ['messi', 'generate', 'test/fixtures/messi/nonexistent.proto', '--out', '/tmp/x'],
      ['messi', 'frob'],
    ]) {
      const r = meshgw(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    const r = meshgw(['messi', 'generate', 'test/fixtures/messi/chat.proto', '--out', join(fixtures, 'chat.proto', 'sub')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^meshgw: cannot create the output directory/);
  });
});

/** The flags an app built on the generated code might use: strict and then some. */
const TSC_FLAGS = [
  '--strict',
  '--noUncheckedIndexedAccess',
  '--exactOptionalPropertyTypes',
  '--noUnusedLocals',
  '--noUnusedParameters',
  '--noImplicitOverride',
  '--noImplicitReturns',
  '--module',
  'nodenext',
  '--moduleResolution',
  'nodenext',
  '--target',
  'es2022',
  '--types',
  'node',
  '--typeRoots',
  join(root, 'node_modules/@types'),
];

describe('the generated code type-checks under tsc --strict', () => {
  it('chat and types modules, and an app using them (wrong uses rejected)', () => {
    expect(existsSync(join(root, 'dist/src/messi/index.d.ts')), 'dist/ is not built: run npx tsc -p tsconfig.json').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'messi-tsc-'));
    try {
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(root, join(dir, 'node_modules/meshgw'), 'dir');
      writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
      for (const proto of ['chat.proto', 'types.proto']) {
        for (const f of generateMessi(fixture(proto), { file: proto }).files) writeFileSync(join(dir, f.name), f.text);
      }
      writeFileSync(
        join(dir, 'app.ts'),
        `import { ChatClient } from './chat-client.js';
import { ChatServer, type ChatServerClient } from './chat-server.js';
import { initMessageInd, type MessageInd } from './chat-messages.js';
import { MyTypesClient } from './my_types-client.js';
import { Color, initAllScalars, initComposite } from './my_types-messages.js';

export async function main(): Promise<void> {
  const server = new ChatServer({ port: 0, host: '127.0.0.1', maxClients: 10 });
  const seen: ChatServerClient[] = [];
  server.onClientConnected = (client) => { seen.push(client); };
  server.onClientDisconnected = (client, reason: string) => { void client.id; void reason.length; };
  server.onConnectReq = (_client, req) => { server.replyConnectRsp(); void req.user.toUpperCase(); };
  server.onMessageInd = (client, ind: MessageInd) => {
    server.broadcastMessageInd(ind);
    server.sendMessageInd(client, { text: 'echo' });
    server.send(client, { type: 'connect_rsp', body: {} });
    server.disconnect(client);
  };
  const { port, host } = await server.start();
  const client = new ChatClient({ host, port, version: 'seed' });
  client.onConnected = () => { client.sendConnectReq({ user: 'ann' }); };
  client.onDisconnected = (reason) => { void reason.length; };
  client.onConnectRsp = () => { client.send({ type: 'message_ind', body: initMessageInd({ text: 'hi' }) }); };
  client.onMessageInd = (m) => { const s: string = m.user + m.text; void s; };
  client.start();
  const ok: boolean = client.sendMessageInd({ user: 'a', text: 'b' });
  void ok;
  // @ts-expect-error a client does not send connect_rsp
  client.send({ type: 'connect_rsp', body: {} });
  // @ts-expect-error user is a string
  client.sendConnectReq({ user: 5 });
  // @ts-expect-error no such field
  client.sendMessageInd({ txt: 'x' });
  // @ts-expect-error a server does not send connect_req
  server.send(seen[0]!, { type: 'connect_req', body: { user: 'x' } });
  await client.stop();
  await server.stop();

  const t = new MyTypesClient({ host: '127.0.0.1', port: 1 });
  const all = initAllScalars({ data: new Uint8Array([1]), color: Color.BLUE, i64: 2 ** 40 });
  t.sendAllScalars(all);
  t.sendPing();
  t.onPong = () => {};
  t.onComposite = (c) => {
    const x: number | undefined = c.origin?.x;
    const n: number = c.counts['a'] ?? 0;
    const p = c.points[0];
    void [x, n, p?.y, c.note?.length, c.child?.child, c.by_id['1']?.x, c.shape === 0];
  };
  void initComposite({ tags: ['a'] });
}
`,
      );
      const files = ['app.ts', 'chat-messages.ts', 'chat-client.ts', 'chat-server.ts', 'my_types-messages.ts', 'my_types-client.ts', 'my_types-server.ts'];
      const r = spawnSync(process.execPath, [tsc, ...TSC_FLAGS, '--noEmit', ...files], { cwd: dir, encoding: 'utf8' });
      expect(r.error).toBeUndefined();
      expect(r.stdout + r.stderr, 'tsc output').toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
