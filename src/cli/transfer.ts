/**
 * `meshgw send SID FILE [--port P]` and `meshgw receive [DIR] [--port P]`: one file over an MSP
 * stream, its name, size and SHA-256 checked at the end.
 *
 * The wire, on the stream (default port 64):
 *   sender → receiver: one JSON line `{"name":"report.pdf","size":5242880,"sha256":"<64 hex>"}\n`
 *                      (at most 4 KiB with the newline), then exactly `size` bytes, then EOF;
 *   receiver → sender: one JSON line `{"ok":true}\n` or `{"ok":false,"error":"..."}\n`, then EOF.
 * The receiver may answer early (a refused name, over its size cap): the sender then stops.
 *
 * The receiver writes to a temporary file in DIR (`.meshgw-*.part`) and links it to its name only
 * when the size and hash match; on any failure it is removed. Names are a basename only: '',
 * '.', '..', names with '/', '\\', NUL or other control characters, names starting with '.',
 * over 255 bytes, or resolving outside DIR are refused. An existing file is never overwritten:
 * `name.1.ext`, `name.2.ext`, ... is used instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, linkSync, mkdirSync, statSync, unlinkSync, type WriteStream } from 'node:fs';
import { basename, extname, join, relative, resolve, isAbsolute } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { apiOptions, withApi, type ApiOptions } from './api-connect.js';
import { CLOSE_LINGER_MS, daemonClosed, streamFailureText } from './cat.js';
import { resolveSid } from './ping.js';
import { parseSidPrefix, shortSid } from './sid.js';
import { UsageError, parseIntOption } from './usage-error.js';

/** Read buffer of a file transfer's stream (the credit its daemon gets): bulk wants a deep pipe. */
const TRANSFER_READ_BUFFER = 1024 * 1024;
export const DEFAULT_TRANSFER_PORT = 64;
export const MAX_HEADER_BYTES = 4096;
export const DEFAULT_MAX_SIZE = 1024 ** 3;
/** How long either side waits for the other's EOF / answer after its own part is done. */
const LINGER_MS = 30_000;

export interface TransferHeader {
  name: string;
  size: number;
  sha256: string;
}

export class TransferError extends Error {
  override readonly name = 'TransferError';
}

// ---------------------------------------------------------------- names

/** Why a file name from the wire is refused, or undefined when it is a plain basename. */
export function refuseName(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return `file name '${name}' refused`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'file name refused: it contains control characters';
  if (name.includes('/') || name.includes('\\')) return `file name '${name}' refused: a path, not a plain name`;
  if (name.startsWith('.')) return `file name '${name}' refused: it starts with '.'`;
  if (Buffer.byteLength(name) > 255) return 'file name refused: longer than 255 bytes';
  return undefined;
}

/** The path `name` would have in `dir`, or an error if it resolves outside. */
export function pathInside(dir: string, name: string): string {
  const root = resolve(dir);
  const p = resolve(root, name);
  const rel = relative(root, p);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.includes('/') || rel.includes('\\')) {
    throw new TransferError(`file name '${name}' refused: it resolves outside the directory`);
  }
  return p;
}

/** `name`, or with `.N` before the extension for the first N that is free. */
export function candidateName(name: string, n: number): string {
  if (n === 0) return name;
  const ext = extname(name);
  return ext === '' || ext === name ? `${name}.${n}` : `${name.slice(0, -ext.length)}.${n}${ext}`;
}

// ---------------------------------------------------------------- units and progress

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/** Parses a size: bytes, or with K, M, G (binary: KiB, MiB, GiB). UsageError otherwise. */
export function parseSizeOption(name: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$/i.exec(value);
  if (!m) throw new UsageError(`${name} must be a size like 1048576, 512K, 10M or 1G, got '${value}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${name} is too large: '${value}'`);
  return n;
}

export interface Progress {
  update(done: number): void;
  stop(): void;
}

/**
 * Progress on stderr: a cli-progress bar (bytes, rate, ETA) on a terminal, otherwise a plain line
 * every 10 % ("sent 1.2 MiB of 5.0 MiB (24 %), 310.0 KiB/s"); nothing with `quiet`.
 */
export function makeProgress(verb: string, total: number, opts: { quiet?: boolean; tty?: boolean; write?: (line: string) => void } = {}): Progress {
  if (opts.quiet) return { update: () => undefined, stop: () => undefined };
  const started = performance.now();
  const rate = (done: number): string => {
    const s = (performance.now() - started) / 1000;
    return `${formatSize(s > 0 ? Math.round(done / s) : 0)}/s`;
  };
  if (opts.tty ?? process.stderr.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${verb} [{bar}] {percentage}% | {done} of {all} | {rate} | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(Math.max(total, 1), 0, { done: formatSize(0), all: formatSize(total), rate: '-' });
    return {
      update: (done) => bar.update(total === 0 ? 1 : done, { done: formatSize(done), rate: rate(done) }),
      stop: () => bar.stop(),
    };
  }
  const write = opts.write ?? ((line: string) => void process.stderr.write(line + '\n'));
  let nextTenth = 1;
  return {
    update: (done) => {
      if (total <= 0) return;
      const tenth = Math.floor((done / total) * 10);
      if (tenth < nextTenth) return;
      nextTenth = tenth + 1;
      write(`${verb} ${formatSize(done)} of ${formatSize(total)} (${Math.floor((done / total) * 100)} %), ${rate(done)}`);
    },
    stop: () => undefined,
  };
}

// ---------------------------------------------------------------- reading a stream

/** Pulls from a Readable: lines and chunks on demand, with backpressure (pauses beyond 256 KiB). */
export class StreamReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly stream: Duplex) {
    stream.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      if (this.buffered > 256 * 1024) stream.pause();
      this.notify();
    });
    stream.on('end', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('error', (e) => {
      this.error ??= e;
      this.notify();
    });
    stream.on('close', () => {
      if (!this.ended) this.error ??= new TransferError('the stream closed before its end');
      this.notify();
    });
  }

  /** From now on drops whatever arrives (so the peer's EOF can still be seen). */
  discard(): void {
    this.chunks.length = 0;
    this.buffered = 0;
    this.stream.removeAllListeners('data');
    this.stream.on('data', () => undefined);
    this.stream.resume();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private wait(): Promise<void> {
    return new Promise((r) => (this.wake = r));
  }

  private take(): Buffer | undefined {
    const c = this.chunks.shift();
    if (c) {
      this.buffered -= c.length;
      if (this.buffered <= 64 * 1024 && this.stream.isPaused()) this.stream.resume();
    }
    return c;
  }

  /** Puts bytes back in front. */
  unshift(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.unshift(b);
    this.buffered += b.length;
  }

  /** The next chunk; undefined at EOF; throws the stream's error. */
  async chunk(): Promise<Buffer | undefined> {
    for (;;) {
      const c = this.take();
      if (c) return c;
      if (this.error) throw this.error;
      if (this.ended) return undefined;
      await this.wait();
    }
  }

  /** One line (without '\n') of at most `max` bytes with the newline; undefined at EOF before any byte. */
  async line(max: number): Promise<string | undefined> {
    const parts: Buffer[] = [];
    let length = 0;
    for (;;) {
      const c = await this.chunk();
      if (!c) {
        if (length === 0) return undefined;
        throw new TransferError('the stream ended in the middle of a line');
      }
      const nl = c.indexOf(0x0a);
      if (nl >= 0) {
        if (length + nl + 1 > max) throw new TransferError(`a line longer than ${max} bytes`);
        parts.push(c.subarray(0, nl));
        this.unshift(c.subarray(nl + 1));
        return Buffer.concat(parts).toString('utf8');
      }
      length += c.length;
      if (length >= max) throw new TransferError(`a line longer than ${max} bytes`);
      parts.push(c);
    }
  }
}

function writeAll(stream: Duplex, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/** Resolves when the stream's readable side ended or it closed, or after `ms`. */
function settleStream(stream: Duplex, ms: number): Promise<void> {
  if (stream.destroyed || stream.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(done, ms);
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

export function parseHeader(line: string): TransferHeader {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new TransferError('the transfer header is not JSON');
  }
  const h = v as Record<string, unknown>;
  if (typeof v !== 'object' || v === null || typeof h['name'] !== 'string' || typeof h['size'] !== 'number' || typeof h['sha256'] !== 'string') {
    throw new TransferError('the transfer header needs name, size and sha256');
  }
  const size = h['size'];
  if (!Number.isSafeInteger(size) || size < 0) throw new TransferError(`bad size in the transfer header: ${size}`);
  const sha256 = h['sha256'].toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new TransferError('bad sha256 in the transfer header');
  return { name: h['name'], size, sha256 };
}

// ---------------------------------------------------------------- sending

export interface SendOptions {
  progress?: Progress;
}

/** Hashes a file: its size and SHA-256 in hex. */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path)) {
    hash.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/**
 * Sends `path` over `stream` as `name` (header, bytes, EOF) and waits for the receiver's answer.
 * Resolves when it was ok; throws a TransferError with the receiver's reason otherwise.
 * `header` overrides what goes on the wire (for tests that forge one).
 */
export async function sendFile(stream: Duplex, path: string, opts: SendOptions & { header?: Partial<TransferHeader> } = {}): Promise<void> {
  const { size, sha256 } = await hashFile(path);
  const header: TransferHeader = { name: basename(path), size, sha256, ...opts.header };
  const reader = new StreamReader(stream);
  let answer: { ok: boolean; error?: string } | undefined;
  let answerError: Error | undefined;
  const answered = (async () => {
    try {
      const line = await reader.line(MAX_HEADER_BYTES);
      if (line === undefined) throw new TransferError('the receiver ended the stream without an answer');
      const v = JSON.parse(line) as { ok?: unknown; error?: unknown };
      answer = { ok: v.ok === true, ...(typeof v.error === 'string' ? { error: v.error } : {}) };
    } catch (e) {
      answerError = e instanceof SyntaxError ? new TransferError('the receiver answered something that is not JSON') : (e as Error);
    }
  })();
  let wake: (() => void) | undefined;
  void answered.then(() => wake?.());
  await writeAll(stream, JSON.stringify(header) + '\n');
  let sent = 0;
  const file = createReadStream(path, { highWaterMark: 16 * 1024 });
  try {
    for await (const c of file) {
      if (answer || answerError) break;
      const chunk = c as Buffer;
      const wrote = stream.write(chunk);
      sent += chunk.length;
      opts.progress?.update(sent);
      if (!wrote) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off('drain', done);
            stream.off('close', done);
            wake = undefined;
            resolve();
          };
          wake = done;
          stream.on('drain', done);
          stream.on('close', done);
        });
      }
      if (stream.destroyed) break;
    }
  } finally {
    file.destroy();
    opts.progress?.stop();
  }
  if (!stream.destroyed && !stream.writableEnded) stream.end();
  await answered;
  if (answerError) throw answerError;
  if (!answer) throw new TransferError('no answer from the receiver');
  if (!answer.ok) throw new TransferError(`the receiver refused the file: ${answer.error ?? 'no reason given'}`);
  await settleStream(stream, LINGER_MS);
}

// ---------------------------------------------------------------- receiving

export interface ReceiveOptions {
  maxSize?: number;
  progress?: (header: TransferHeader) => Progress;
}

export interface Received {
  header: TransferHeader;
  path: string;
}

/**
 * Receives one file from `stream` into `dir`: reads the header, checks the name and size cap,
 * writes a temporary file, checks size and SHA-256, links it to its name (never overwriting) and
 * answers. Any failure removes the temporary file, answers `{"ok":false,...}` when the stream
 * still can, and throws a TransferError.
 */
export async function receiveFile(stream: Duplex, dir: string, opts: ReceiveOptions = {}): Promise<Received> {
  const maxSize = opts.maxSize ?? DEFAULT_MAX_SIZE;
  const reader = new StreamReader(stream);
  let temp: string | undefined;
  let out: WriteStream | undefined;
  const answer = async (body: { ok: true } | { ok: false; error: string }): Promise<void> => {
    if (stream.destroyed || stream.writableEnded) return;
    try {
      await writeAll(stream, JSON.stringify(body) + '\n');
      stream.end();
    } catch {
      // the stream failed: nothing to answer on
    }
  };
  try {
    const line = await reader.line(MAX_HEADER_BYTES);
    if (line === undefined) throw new TransferError('the sender ended the stream before the header');
    const header = parseHeader(line);
    const refused = refuseName(header.name);
    if (refused) throw new TransferError(refused);
    const target = pathInside(dir, header.name);
    if (header.size > maxSize) throw new TransferError(`file too large: ${header.size} bytes, the cap is ${maxSize}`);
    temp = join(resolve(dir), `.meshgw-${randomBytes(6).toString('hex')}.part`);
    out = createWriteStream(temp, { flags: 'wx', mode: 0o644 });
    let diskError: Error | undefined;
    out.on('error', (e) => (diskError ??= e));
    await once(out, 'open');
    const progress = opts.progress?.(header);
    const hash = createHash('sha256');
    let got = 0;
    try {
      while (got < header.size) {
        const c = await reader.chunk();
        if (!c) throw new TransferError(`the sender ended after ${got} of ${header.size} bytes`);
        const take = Math.min(c.length, header.size - got);
        const part = c.subarray(0, take);
        if (take < c.length) throw new TransferError(`the sender sent more than the ${header.size} bytes announced`);
        hash.update(part);
        got += take;
        if (diskError) throw new TransferError(`cannot write the file: ${diskError.message}`);
        if (!out.write(part)) await once(out, 'drain');
        progress?.update(got);
      }
    } finally {
      progress?.stop();
    }
    const ws = out;
    await new Promise<void>((res, rej) => ws.end((err?: Error | null) => (err ? rej(err) : res())));
    out = undefined;
    const sha256 = hash.digest('hex');
    if (sha256 !== header.sha256) throw new TransferError(`sha256 mismatch: got ${sha256}, the sender said ${header.sha256}`);
    if (statSync(temp).size !== header.size) throw new TransferError('size mismatch on disk');
    const finalPath = linkNoOverwrite(temp, target);
    unlinkSync(temp);
    temp = undefined;
    await answer({ ok: true });
    await settleStream(stream, LINGER_MS);
    return { header, path: finalPath };
  } catch (e) {
    const message = e instanceof TransferError ? e.message : streamFailureText(e);
    reader.discard();
    await answer({ ok: false, error: message });
    if (!stream.destroyed) await settleStream(stream, 5000);
    throw new TransferError(message);
  } finally {
    if (out) out.destroy();
    if (temp !== undefined) {
      try {
        unlinkSync(temp);
      } catch {
        // already gone
      }
    }
  }
}

/** Hard-links `temp` to `target` or the first free `name.N.ext` beside it; returns the path. */
function linkNoOverwrite(temp: string, target: string): string {
  const dir = resolve(target, '..');
  const name = basename(target);
  for (let n = 0; n < 10_000; n++) {
    const p = join(dir, candidateName(name, n));
    try {
      linkSync(temp, p);
      return p;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  throw new TransferError(`no free name for '${name}' in the directory`);
}

// ---------------------------------------------------------------- the commands

interface SendCommandOptions extends ApiOptions {
  port: string;
  quiet?: boolean;
}

interface ReceiveCommandOptions extends ApiOptions {
  port: string;
  maxSize: string;
  quiet?: boolean;
}

export function sendOptions(cmd: Command): Command {
  return apiOptions(
    cmd
      .argument('<sid>', 'the node: its SID in hex, or a unique prefix of at least 8 hex digits')
      .argument('<file>', 'the file to send')
      .option('-p, --port <port>', 'the MSP port the receiver listens on', String(DEFAULT_TRANSFER_PORT))
      .option('-q, --quiet', 'no progress'),
  );
}

export function receiveOptions(cmd: Command): Command {
  return apiOptions(
    cmd
      .argument('[dir]', 'where to store the file', '.')
      .option('-p, --port <port>', 'the MSP port to listen on', String(DEFAULT_TRANSFER_PORT))
      .option('--max-size <bytes>', 'refuse larger files (K, M, G suffixes: KiB, MiB, GiB)', '1G')
      .option('-q, --quiet', 'no progress'),
  );
}

export async function runSendCommand(sidText: string, file: string, opts: SendCommandOptions): Promise<void> {
  const port = parseIntOption('--port', opts.port, 1, 65_535);
  parseSidPrefix(sidText);
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (e) {
    throw new Error(`cannot send '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  await withApi(opts, async (client) => {
    const sid = await resolveSid(client, sidText);
    let stream;
    try {
      stream = await client.openStream(sid, port, { highWaterMark: TRANSFER_READ_BUFFER });
    } catch (e) {
      throw new Error(`cannot open a stream to ${shortSid(sid)}:${port}: ${streamFailureText(e)}`);
    }
    const closed = daemonClosed(client, stream);
    try {
      await sendFile(stream, file, { progress: makeProgress('sent', size, { quiet: opts.quiet === true }) });
    } catch (e) {
      // The receiver's answer (if any) is here: nothing more is to be delivered either way, and
      // what we already queued need not crawl over the air before a clean close: reset.
      closed.dispose();
      stream.destroy();
      throw new Error(e instanceof TransferError ? e.message : streamFailureText(e));
    }
    await closed.wait(CLOSE_LINGER_MS);
    process.stderr.write(`sent ${basename(file)} (${formatSize(size)}) to ${shortSid(sid)}: checked by the receiver\n`);
  });
}

export async function runReceiveCommand(dir: string, opts: ReceiveCommandOptions): Promise<void> {
  const port = parseIntOption('--port', opts.port, 1, 65_535);
  const maxSize = parseSizeOption('--max-size', opts.maxSize);
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw new Error(`cannot receive into '${dir}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  await withApi(opts, async (client) => {
    let listener;
    try {
      listener = await client.listen(port, { highWaterMark: TRANSFER_READ_BUFFER });
    } catch (e) {
      throw new Error(`cannot listen on port ${port}: ${streamFailureText(e)}`);
    }
    process.stderr.write(`waiting for a file on port ${port}\n`);
    try {
      for await (const stream of listener) {
        process.stderr.write(`connection from ${shortSid(stream.remote.sid)}:${stream.remote.port}\n`);
        const closed = daemonClosed(client, stream);
        try {
          const r = await receiveFile(stream, dir, {
            maxSize,
            progress: (h) => makeProgress('received', h.size, { quiet: opts.quiet === true }),
          });
          process.stdout.write(r.path + '\n');
          process.stderr.write(`received ${r.header.name} (${formatSize(r.header.size)}), sha256 ${r.header.sha256}: ok\n`);
        } finally {
          // Our answer and FIN must reach the sender before we disconnect (see daemonClosed).
          await closed.wait(CLOSE_LINGER_MS);
          if (!stream.destroyed) stream.destroy();
        }
        break;
      }
    } finally {
      await listener.close();
    }
  });
}
