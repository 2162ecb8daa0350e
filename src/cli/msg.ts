/**
 * `meshgw msg send HOST:PORT FILE|-` and `meshgw msg listen --udp PORT`: Strokkur messages over
 * plain UDP, no daemon needed. `meshgw msg send SID[:PORT] FILE|-` and `meshgw msg listen
 * --port PORT`: the same over the mesh, through the running daemon's API (SID: a unique prefix of
 * at least 8 hex digits of a known node; PORT: the mesh port, default MESH_MSG_PORT).
 *
 * send: reads the file (or stdin), sends it as one message from an ephemeral port, paced at
 * `--bit-rate` (a receiver's kernel buffer holds only a few hundred datagrams), waits until every
 * datagram has left, prints one summary line on stderr and exits 0.
 *
 * A message sent from a file carries the file's name (`--name` gives another, `--no-name` none),
 * in a small envelope before the file's bytes (msg-name.ts); from stdin it carries none.
 *
 * listen: prints one JSON line per message received, `{"from":"addr:port","size":N,
 * "sha256":"…"}` (size and digest of the file, without the envelope), with `"name"` when the
 * sender gave one; with `--out DIR` it also stores each message in DIR — under the sender's name
 * made safe (one path component, letters, digits and . - _ only; `NAME-<sha prefix>.EXT` when
 * that file exists already), else as `<UTC time>-<source>-<first 16 hex digits of the
 * SHA-256>` — never overwriting a file, and adds `"file"`. Receive failures
 * (a checksum mismatch, a malformed chunk) are one line each on stderr. Runs until SIGINT or
 * SIGTERM, then exits 0.
 *
 * What a listener takes from whom, and keeps: over UDP it binds loopback unless `--host` says
 * otherwise; `--key-file` (UDP, both ends) makes the checksums keyed, and a message without the
 * key is refused (one line on stderr); `--max-disk` (default 1 GiB) caps what one run stores —
 * beyond it messages are reported with `"stored": false`; messages waiting to be written hold at
 * most 64 MiB of memory (more are dropped, said on stderr), and the Strokkur receiver's own caps
 * (64 messages, 16 MiB) bound what is being assembled.
 */
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, extname, join } from 'node:path';
import type { Endpoint } from '../link/link.js';
import { MAX_MESSAGE, type DigestAlgorithm } from '../strokkur/chunk.js';
import { Strokkur } from '../strokkur/strokkur.js';
import { UdpStrokkurTransport, endpointKey } from '../strokkur/udp.js';
import { UsageError, parseIntOption, parseNumberOption } from './usage-error.js';
import { apiOptions, withApi, type ApiOptions } from './api-connect.js';
import { resolveSid } from './ping.js';
import { hexOfSid, shortSid } from './sid.js';
import { safeFileName, unwrapNamed, wrapNamed } from './msg-name.js';

export const DEFAULT_MSG_BIT_RATE = 10_000_000;
/** The mesh port `msg` uses when none is given (Strokkur messages between daemons). */
export const MESH_MSG_PORT = 65;

/** A mesh target: 8 to 64 hex digits (a SID prefix), optionally `:port`; anything else is HOST:PORT. */
export function parseMeshTarget(value: string): { sid: string; port: number | undefined } | undefined {
  const m = /^([0-9a-fA-F]{8,64})(?::(\d+))?$/.exec(value);
  if (!m) return undefined;
  const port = m[2] !== undefined ? parseIntOption('the mesh port', m[2], 1, 255) : undefined;
  return { sid: m[1]!.toLowerCase(), port };
}

interface SendOptions extends Partial<ApiOptions> {
  redundancy?: string;
  digest?: string;
  keyFile?: string;
  /** A name to give (string), none (false), or the file's own (undefined). */
  name?: string | false;
  mtu: string;
  bitRate: string;
}

interface ListenOptions extends Partial<ApiOptions> {
  udp?: string;
  port?: string;
  host: string;
  out?: string;
  maxDisk: string;
  keyFile?: string;
}

/** Parses `host:port`, `1.2.3.4:port` or `[v6]:port`; throws a UsageError. */
export function parseHostPort(value: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]\s]+):(\d+)$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(Number.isInteger(port) && port >= 1 && port <= 65535) || (value.startsWith('[') && isIP(m[1]!) !== 6)) {
    throw new UsageError(`HOST:PORT must be like 127.0.0.1:4270 or [::1]:4270 with a port from 1 to 65535, got '${value}'`);
  }
  return { host: m[1]!, port };
}

/** The preshared secret of `--key-file`: the file's bytes (at least 16). */
async function readKey(file: string | undefined): Promise<Uint8Array | undefined> {
  if (file === undefined) return undefined;
  let key: Buffer;
  try {
    key = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--key-file: cannot read '${file}': ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if (key.length < 16) throw new UsageError(`--key-file: '${file}' holds ${key.length} bytes; a key needs at least 16 (e.g. head -c 32 /dev/urandom > ${file})`);
  return new Uint8Array(key);
}

/** `--max-disk`: bytes, with an optional k, M or G (powers of 1024). */
function parseBytes(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kMG]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag} must be a number of bytes, optionally with k, M or G, got '${text}'`);
  return Math.floor(Number(m[1]) * 1024 ** ['', 'k', 'M', 'G'].indexOf(m[2]!));
}

/** The message to send: a file or stdin, 1 byte to 4 MiB (UsageError otherwise). */
async function readMessage(file: string): Promise<Uint8Array> {
  const tooLarge = (n: string): UsageError => new UsageError(`${n} is larger than the Strokkur maximum of ${MAX_MESSAGE} bytes`);
  let bytes: Uint8Array;
  if (file === '-') {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of process.stdin) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total > MAX_MESSAGE) throw tooLarge('stdin');
    }
    bytes = Buffer.concat(chunks);
  } else {
    try {
      const s = await stat(file);
      if (!s.isFile()) throw new UsageError(`'${file}' is not a file`);
      if (s.size > MAX_MESSAGE) throw tooLarge(`'${file}'`);
      bytes = await readFile(file);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new UsageError(`cannot read '${file}': no such file`);
      throw new Error(`cannot read '${file}': ${(err as Error).message}`);
    }
  }
  if (bytes.length === 0) throw new UsageError(`${file === '-' ? 'stdin' : `'${file}'`} is empty: a Strokkur message is 1 byte to 4 MiB`);
  if (bytes.length > MAX_MESSAGE) throw tooLarge(file === '-' ? 'stdin' : `'${file}'`);
  return bytes;
}

export function msgSendOptions(cmd: Command): Command {
  return apiOptions(
    cmd
      .argument('<target>', `HOST:PORT of a UDP listener (e.g. 127.0.0.1:4270, [::1]:4270), or SID[:PORT] of a mesh node through the daemon (mesh port default ${MESH_MSG_PORT})`)
      .argument('<file>', 'the message: a file, or - to read stdin (1 byte to 4 MiB)')
      .option('--redundancy <r>', 'redundant rows beyond the first (R); default 4')
      .option('--digest <name>', 'the message digest: sha256 (default, every listener) or sha3-256 (UDP only)')
      .option('--name <name>', "the name the receiver stores it under (default: the file's name; none from stdin)")
      .option('--no-name', 'send the bytes alone, without a name')
      .option('--mtu <bytes>', 'largest datagram (UDP only)', '1200')
      .option('--bit-rate <bps>', 'pace datagrams to this many bits/s; 0 sends unpaced (UDP only)', String(DEFAULT_MSG_BIT_RATE))
      .option('--key-file <file>', 'a preshared secret (the file\'s bytes, at least 16): keyed checksums the listener checks (UDP only)'),
  );
}

/** Through the daemon: the message goes to (sid, port) over the mesh; the daemon paces it by airtime. */
async function sendOverMesh(target: { sid: string; port: number | undefined }, out: Outgoing, redundancy: number | undefined, opts: SendOptions): Promise<void> {
  const data = out.message;
  const port = target.port ?? MESH_MSG_PORT;
  await withApi({ api: opts.api!, ...(opts.apiToken !== undefined ? { apiToken: opts.apiToken } : {}) }, async (client) => {
    const sid = await resolveSid(client, target.sid);
    const r = await client.strokkur.send(sid, port, data, redundancy !== undefined ? { redundancy } : {});
    if (!r.ok) throw new Error(`the message to ${shortSid(sid)}:${port} was not sent: ${r.error ?? 'unknown reason'}`);
    process.stderr.write(`meshgw: sent ${out.size} bytes${out.named} to ${shortSid(sid)}:${port} over the mesh (message ${hexOfSid(r.uuid)})\n`);
  });
}

interface Outgoing {
  message: Uint8Array;
  /** The file's bytes, without the name. */
  size: number;
  /** `, named 'NAME'` for the summary line, or ''. */
  named: string;
}

/** The message: the file, with its name in front unless none is wanted (or it would not fit). */
async function messageToSend(file: string, opts: SendOptions): Promise<Outgoing> {
  const data = await readMessage(file);
  const name = opts.name === false ? undefined : typeof opts.name === 'string' ? opts.name : file !== '-' ? basename(file) : undefined;
  if (name === undefined) return { message: data, size: data.length, named: '' };
  if (name === '') throw new UsageError('--name must not be empty (--no-name sends without one)');
  const message = wrapNamed(name, data);
  if (message.length <= MAX_MESSAGE) return { message, size: data.length, named: `, named ${JSON.stringify(name)}` };
  process.stderr.write(`meshgw: sending without the name ${JSON.stringify(name)}: with it the message would exceed ${MAX_MESSAGE} bytes\n`);
  return { message: data, size: data.length, named: '' };
}

export async function runMsgSendCommand(target: string, file: string, opts: SendOptions): Promise<void> {
  const redundancy = opts.redundancy !== undefined ? parseIntOption('--redundancy', opts.redundancy, 0, 1000) : undefined;
  const digest = parseDigestOption(opts.digest);
  const mesh = parseMeshTarget(target);
  if (mesh !== undefined && opts.keyFile !== undefined) throw new UsageError('--key-file is for UDP (HOST:PORT); over the mesh, messages are sealed end to end already');
  if (mesh !== undefined && digest !== undefined) throw new UsageError('--digest is for UDP (HOST:PORT); over the mesh, the daemon sends with its own');
  if (mesh !== undefined) return sendOverMesh(mesh, await messageToSend(file, opts), redundancy, opts);
  const key = await readKey(opts.keyFile);
  const { host, port } = parseHostPort(target);
  const mtu = parseIntOption('--mtu', opts.mtu, 64, 65_507);
  const bitRate = parseNumberOption('--bit-rate', opts.bitRate, 0, 1e11);
  const out = await messageToSend(file, opts);
  const data = out.message;
  let address: string;
  let family: number;
  try {
    ({ address, family } = await lookup(host));
  } catch (err) {
    throw new Error(`cannot resolve '${host}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const transport = await UdpStrokkurTransport.open({ type: family === 6 ? 'udp6' : 'udp4', mtu, ...(bitRate > 0 ? { bitRate } : {}) });
  const strokkur = new Strokkur(transport, { ...(key ? { key } : {}), ...(digest ? { digest } : {}) });
  const dst: Endpoint = { address, port };
  try {
    const r = await strokkur.send(dst, data, redundancy !== undefined ? { redundancy } : {});
    await transport.close();
    if (transport.counters.sendErrors > 0) {
      throw new Error(`${transport.counters.sendErrors} of ${r.chunks} datagrams to ${endpointKey(dst)} failed: ${transport.counters.lastSendError}`);
    }
    process.stderr.write(
      `meshgw: sent ${out.size} bytes${out.named} to ${endpointKey(dst)} in ${r.chunks} chunks of up to ${r.chunkSize} bytes (k=${r.k}, redundancy ${r.redundancy})\n`,
    );
  } finally {
    strokkur.close();
    await transport.close();
  }
}

/** `--digest`: sha256 or sha3-256 (UsageError otherwise); undefined when not given. */
export function parseDigestOption(value: string | undefined): DigestAlgorithm | undefined {
  if (value === undefined) return undefined;
  if (value === 'sha256' || value === 'sha3-256') return value;
  throw new UsageError(`--digest must be sha256 or sha3-256, got '${value}'`);
}

export function msgListenOptions(cmd: Command): Command {
  return apiOptions(
    cmd
      .option('--udp <port>', 'UDP port to listen on (0: any free port, printed on stderr)')
      .option('--port <port>', `mesh port to listen on through the daemon (e.g. ${MESH_MSG_PORT})`)
      .option('--host <addr>', 'address to bind (UDP only); 0.0.0.0 or :: to take messages from other hosts', '127.0.0.1')
      .option('--out <dir>', 'store each message as a file in this directory')
      .option('--max-disk <bytes>', 'stop storing once this many bytes were written to --out (suffixes k, M, G)', '1G')
      .option('--key-file <file>', 'accept only messages keyed with this preshared secret (UDP only; the same file as msg send --key-file)'),
  );
}

/** `<UTC time>-<source>-<sha prefix>`, safe as a file name on any system. */
export function messageFileName(at: Date, source: string, sha256: string): string {
  const time = at.toISOString().replace(/[-:]/g, '');
  return `${time}-${source.replace(/[^A-Za-z0-9.]+/g, '_').replace(/^_+|_+$/g, '')}-${sha256.slice(0, 16)}`;
}

/**
 * Where a message goes in `out`: the sender's name made safe, then that name with the digest
 * before its extension; without a usable name, `<time>-<source>-<digest>`. The last candidate
 * that exists already holds these very bytes (same digest).
 */
function fileCandidates(out: string, source: string, sha256: string, name: string | undefined): string[] {
  const safe = name !== undefined ? safeFileName(name) : undefined;
  if (safe === undefined) return [join(out, messageFileName(new Date(), source, sha256))];
  const ext = extname(safe);
  return [join(out, safe), join(out, `${safe.slice(0, safe.length - ext.length)}-${sha256.slice(0, 16)}${ext}`)];
}

/** Where received messages go, and what the disk cap has left. */
interface Inbox {
  out: string | undefined;
  maxDisk: number;
  written: number;
  capNoted: boolean;
}

/** Received messages waiting for their turn to be written, at most (then dropped, with a line on stderr). */
const MAX_PENDING_BYTES = 64 * 1024 * 1024;

/** One received message: its JSON line on stdout, after its file (with --out) is written. */
async function reportMessage(inbox: Inbox, source: string, message: Uint8Array, extra: Record<string, string | number | boolean> = {}): Promise<void> {
  const { name, content: bytes } = unwrapNamed(message);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const line: Record<string, string | number | boolean> = { from: source, ...extra, ...(name !== undefined ? { name } : {}), size: bytes.length, sha256 };
  const out = inbox.out;
  if (out !== undefined && inbox.written + bytes.length > inbox.maxDisk) {
    line.stored = false;
    if (!inbox.capNoted) {
      inbox.capNoted = true;
      process.stderr.write(`meshgw: ${inbox.written} bytes stored, the --max-disk cap of ${inbox.maxDisk}: further messages are reported, not stored\n`);
    }
  } else if (out !== undefined) {
    inbox.written += bytes.length;
    const candidates = fileCandidates(out, source, sha256, name);
    for (const [i, file] of candidates.entries()) {
      try {
        await writeFile(file, bytes, { flag: 'wx' });
        line.file = file;
        break;
      } catch (err) {
        const exists = (err as NodeJS.ErrnoException).code === 'EEXIST';
        // The last name carries the digest: if it exists, it holds this message already.
        if (exists && i === candidates.length - 1) line.file = file;
        else if (!exists) {
          process.stderr.write(`meshgw: cannot store the message from ${source}: ${(err as Error).message}\n`);
          break;
        }
      }
    }
  }
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function makeOut(out: string | undefined): Promise<void> {
  if (out === undefined) return;
  try {
    await mkdir(out, { recursive: true });
  } catch (err) {
    throw new Error(`cannot create '${out}': ${(err as Error).message}`);
  }
}

/** Through the daemon: every Strokkur message to our mesh port, until SIGINT/SIGTERM. */
async function listenOverMesh(port: number, opts: ListenOptions, inbox: Inbox): Promise<void> {
  await makeOut(opts.out);
  await withApi({ api: opts.api!, ...(opts.apiToken !== undefined ? { apiToken: opts.apiToken } : {}) }, async (client) => {
    const messages = await client.strokkur.listen(port);
    process.stderr.write(`meshgw: listening on mesh port ${port}\n`);
    let received = 0;
    const stop = (): void => {
      void messages.return?.();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    for await (const m of messages) {
      received++;
      await reportMessage(inbox, hexOfSid(m.sid), m.data, { port, uuid: hexOfSid(m.uuid) });
    }
    process.stderr.write(`meshgw: received ${received} messages\n`);
  });
}

export async function runMsgListenCommand(opts: ListenOptions): Promise<void> {
  if (opts.udp !== undefined && opts.port !== undefined) throw new UsageError('--udp and --port exclude each other: UDP without a daemon, or a mesh port through it');
  const inbox: Inbox = { out: opts.out, maxDisk: parseBytes('--max-disk', opts.maxDisk ?? '1G'), written: 0, capNoted: false };
  if (opts.port !== undefined && opts.keyFile !== undefined) throw new UsageError('--key-file is for --udp; over the mesh, messages are sealed end to end already');
  if (opts.port !== undefined) return listenOverMesh(parseIntOption('--port', opts.port, 1, 255), opts, inbox);
  if (opts.udp === undefined) throw new UsageError("one of '--udp <port>' (UDP, no daemon) or '--port <port>' (a mesh port, through the daemon) is required");
  const port = parseIntOption('--udp', opts.udp, 0, 65535);
  if (isIP(opts.host) === 0) throw new UsageError(`--host must be an IPv4 or IPv6 address, got '${opts.host}'`);
  const out = opts.out;
  await makeOut(out);
  const key = await readKey(opts.keyFile);
  const transport = await UdpStrokkurTransport.open({ port, address: opts.host, receiveBufferBytes: 8 * 1024 * 1024 });
  const strokkur = new Strokkur(transport, key ? { key } : {});
  const local = transport.localEndpoint();
  process.stderr.write(`meshgw: listening on ${endpointKey(local)}\n`);

  // Lines go out in the order messages arrived, each after its file is written.
  let chain: Promise<void> = Promise.resolve();
  let pending = 0;
  let droppedPending = 0;
  strokkur.on('message', (from, bytes) => {
    const source = endpointKey(from);
    // A disk slower than the network: messages wait in memory up to a cap, then are dropped.
    if (pending + bytes.length > MAX_PENDING_BYTES) {
      if (droppedPending++ % 100 === 0) process.stderr.write(`meshgw: from ${source}: dropped a message of ${bytes.length} bytes: ${pending} bytes wait to be written (${droppedPending} dropped so far)\n`);
      return;
    }
    pending += bytes.length;
    chain = chain.then(() => reportMessage(inbox, source, bytes)).finally(() => (pending -= bytes.length));
  });
  strokkur.on('error', (err) => process.stderr.write(`meshgw: from ${err.sourceKey}: ${err.reason}\n`));
  // Chunks of the wrong mode (unkeyed with --key-file, keyed without) are refused silently by the
  // receiver: say so once a second when their count grew.
  let rejectedSaid = 0;
  const sayRejected = (): void => {
    const n = strokkur.receiver.counters.rejected;
    if (n === rejectedSaid) return;
    rejectedSaid = n;
    process.stderr.write(`meshgw: refused ${n} chunk(s) so far: ${key ? 'not keyed with --key-file (or with another key)' : 'keyed (listen with the same --key-file)'}\n`);
  };
  const rejectedTimer = setInterval(sayRejected, 1000);
  rejectedTimer.unref();

  const stop = (): void => {
    clearInterval(rejectedTimer);
    sayRejected();
    strokkur.close();
    void chain
      .then(() => transport.close())
      .then(() => {
        const c = strokkur.counters;
        process.stderr.write(`meshgw: received ${c.messagesReceived} messages, ${c.receiveErrors} failed\n`);
        process.exit(0);
      });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
