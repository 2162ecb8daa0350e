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
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface DaemonLogOptions {
  level?: LogLevel;
  /** Human-readable lines instead of JSON; default: whether `stream` is a terminal. */
  pretty?: boolean;
  /** Where the log goes; default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
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
  /** Flushes, stops the window timer. */
  close(): void;
  readonly pino: Logger;
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
  const pretty = options.pretty ?? stream.isTTY === true;
  const logger = pino({ level: options.level ?? 'info', base: undefined }, pretty ? prettyStream(stream) : (stream as NodeJS.WritableStream));
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
    close: () => {
      flushRepeats();
      clearInterval(timer);
    },
  };
}
