/**
 * The daemon's log: `pino`, one JSON object per line when stderr is not a terminal (journald,
 * files, log shippers), a short human line (`12:03:04.123 WARN  udp0: down (…)`) when it is.
 * Levels trace … fatal; `--log-level` (or the config file's `logLevel`) sets the least severe
 * one written.
 *
 * The daemon's parts log through a plain `(line: string) => void` (see DaemonIo.log); this module
 * turns such lines into records: a line starting with `warning:` is a warning, `error:` an error,
 * anything else information. Repeats are rate-limited: the same line (digits aside, so that
 * counters and addresses do not make every line new) is written at most once per 10 s window;
 * the ones held back are summed up when the window ends ("… 512 more in the last 10 s: …"), so
 * a modem spewing garbage or a flood of bad frames cannot fill the disk. At most 256 distinct
 * lines are tracked at once; beyond that, lines are written unthrottled rather than lost.
 *
 * With `file` (`--log-file`, the config file's `logFile`) the JSON lines are appended to that file
 * instead. It is opened at once, so a path that cannot be written is a LogFileError before the
 * daemon makes anything; `reopen()` closes it and opens the path again, for logrotate (`mv
 * meshgw.log meshgw.log.1; kill -HUP PID`). Each line is written synchronously, so the last-resort
 * handler's line reaches the file before `process.exit`, and a reopen swaps files between two
 * lines, never inside one; the repeat limit keeps those writes few. A line the file cannot take (a
 * full disk), and every line while a reopen has failed, goes to `stream` (stderr) instead: the
 * log is never silently lost, and a later reopen that succeeds returns to the file.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino, { type DestinationStream, type Logger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export const LOG_LEVELS: readonly LogLevel[] = Object.freeze(['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const);

export interface DaemonLogOptions {
  level?: LogLevel;
  /** Human-readable lines instead of JSON; default: whether `stream` is a terminal. */
  pretty?: boolean;
  /** Where the log goes; default process.stderr. With `file`: where it goes when the file cannot take it. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** A file the JSON lines are appended to (created if missing; its directory must exist). */
  file?: string;
  /** The repeat window, ms; default 10,000. */
  repeatWindowMs?: number;
  /** The clock of the repeat windows, ms; default Date.now. */
  now?: () => number;
}

export interface DaemonLog {
  /** A line as the daemon's parts write them (level from its prefix). */
  line(text: string): void;
  write(level: LogLevel, text: string, fields?: Record<string, unknown>): void;
  /** Writes the summaries of repeats held back so far (also done at each window's end). */
  flushRepeats(): void;
  /**
   * Closes the log file and opens its path again (a no-op without one). Throws a LogFileError
   * when it cannot be opened; the log then goes to `stream` until a later reopen succeeds.
   */
  reopen(): void;
  /** Flushes, stops the window timer, closes the log file. */
  close(): void;
  /** The log file, if the log goes to one. */
  readonly file: string | undefined;
  readonly pino: Logger;
}

/** A log file that cannot be opened for appending. */
export class LogFileError extends Error {
  override name = 'LogFileError';
}

function openLogFile(path: string): number {
  try {
    return openSync(path, 'a', 0o644);
  } catch (err) {
    throw new LogFileError(`cannot write the log file ${path}: ${(err as Error).message}`);
  }
}

/**
 * pino's destination for a log file: appends each line with one synchronous write, falling back
 * to `fallback` for a line the file does not take and while no file is open.
 */
class LogFileSink implements DestinationStream {
  private fd: number | undefined;
  /** The error of the last write that failed, until a write succeeds again (said once). */
  private failing: string | undefined;

  constructor(
    readonly path: string,
    private readonly fallback: NodeJS.WritableStream,
  ) {
    this.fd = openLogFile(path);
  }

  write(line: string): void {
    if (this.fd !== undefined) {
      try {
        const bytes = Buffer.from(line);
        for (let at = 0; at < bytes.length; ) at += writeSync(this.fd, bytes, at);
        this.failing = undefined;
        return;
      } catch (err) {
        const why = (err as Error).message;
        if (this.failing !== why) {
          this.failing = why;
          this.fallback.write(`meshgw: cannot write the log file ${this.path}: ${why}; the lines it does not take follow here\n`);
        }
      }
    }
    this.fallback.write(line);
  }

  /** Closes the file and opens its path again; throws a LogFileError (the sink is then closed). */
  reopen(): void {
    this.close();
    this.failing = undefined;
    this.fd = openLogFile(this.path);
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      closeSync(fd);
    } catch {
      // Nothing more can be written to it either way.
    }
  }
}

const MAX_TRACKED = 256;
const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** pino's JSON lines as short human lines: time, level, message, then any other fields. */
function prettyStream(out: NodeJS.WritableStream): Writable {
  let rest = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      rest += chunk.toString();
      for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n')) {
        const json = rest.slice(0, i);
        rest = rest.slice(i + 1);
        try {
          const { time, level, msg, pid: _pid, hostname: _host, ...fields } = JSON.parse(json) as Record<string, unknown>;
          const t = new Date(typeof time === 'number' ? time : Date.now()).toISOString().slice(11, 23);
          const extra = Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('');
          out.write(`${t} ${(LEVEL_NAMES[level as number] ?? String(level)).padEnd(5)} ${String(msg ?? '')}${extra}\n`);
        } catch {
          out.write(json + '\n');
        }
      }
      done();
    },
  });
}

export function createDaemonLog(options: DaemonLogOptions = {}): DaemonLog {
  const stream = options.stream ?? process.stderr;
  const sink = options.file !== undefined ? new LogFileSink(options.file, stream) : undefined;
  // A file gets JSON lines (what logrotate's users feed to their tools), whatever stderr is.
  const pretty = sink === undefined && (options.pretty ?? stream.isTTY === true);
  const logger = pino({ level: options.level ?? 'info', base: undefined }, sink ?? (pretty ? prettyStream(stream) : (stream as NodeJS.WritableStream)));
  const windowMs = options.repeatWindowMs ?? 10_000;
  const now = options.now ?? Date.now;
  /** key → the window's start, the first text and level, and the count held back. */
  const seen = new Map<string, { since: number; level: LogLevel; text: string; held: number }>();

  /** The line for the repeats of `r` held back until `t`, if any. */
  const summarise = (r: { since: number; level: LogLevel; text: string; held: number }, t: number): void => {
    if (r.held > 0) logger[r.level]({ repeats: r.held }, `… ${r.held} more in the last ${Math.round((t - r.since) / 1000)} s: ${r.text}`);
  };
  const flushRepeats = (): void => {
    const t = now();
    for (const [key, r] of seen) {
      summarise(r, t);
      if (t - r.since >= windowMs || r.held > 0) seen.delete(key);
    }
  };
  const timer = setInterval(flushRepeats, windowMs);
  timer.unref();

  const write = (level: LogLevel, text: string, fields?: Record<string, unknown>): void => {
    const key = `${level}|${text.replace(/\d+/g, '#')}`;
    const t = now();
    const r = seen.get(key);
    if (r !== undefined && t - r.since < windowMs) {
      r.held++;
      return;
    }
    if (r !== undefined) {
      summarise(r, t);
      seen.delete(key);
    }
    if (seen.size < MAX_TRACKED) seen.set(key, { since: t, level, text, held: 0 });
    if (fields) logger[level](fields, text);
    else logger[level](text);
  };

  return {
    pino: logger,
    write,
    line: (text) => {
      if (/^warning:/i.test(text)) write('warn', text.replace(/^warning:\s*/i, ''));
      else if (/^error:/i.test(text)) write('error', text.replace(/^error:\s*/i, ''));
      else write('info', text);
    },
    flushRepeats,
    reopen: () => sink?.reopen(),
    close: () => {
      flushRepeats();
      clearInterval(timer);
      sink?.close();
    },
    file: options.file,
  };
}
