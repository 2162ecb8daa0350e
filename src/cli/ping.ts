/**
 * `meshgw ping SID [-c N] [-s SIZE] [-i INTERVAL]`: the far node's echo service through a running
 * daemon, like ping(8): one line per reply, then loss and min/avg/max/mdev. SID is the full hex
 * or a unique prefix of at least 8 digits (resolved against the daemon's neighbours and routes).
 * Ctrl-C or the count ends it. Exit 0 if any reply came, 1 otherwise.
 */
import type { Command } from 'commander';
import { MeshgwApiError, type MeshgwClient } from '../api/client.js';
import { apiOptions, withApi, type ApiOptions } from './api-connect.js';
import { SID_HEX_DIGITS, parseSidPrefix, resolveSidPrefix, shortSid } from './sid.js';
import { parseIntOption, parseNumberOption } from './usage-error.js';

export const DEFAULT_PING_SIZE = 32;

interface PingOptions extends ApiOptions {
  count?: string;
  size: string;
  interval: string;
  timeout: string;
}

export function pingOptions(cmd: Command): Command {
  return apiOptions(
    cmd
      .argument('<sid>', 'the node: its SID in hex, or a unique prefix of at least 8 hex digits')
      .option('-c, --count <n>', 'stop after n pings (default: until Ctrl-C)')
      .option('-s, --size <bytes>', 'payload bytes per ping', String(DEFAULT_PING_SIZE))
      .option('-i, --interval <seconds>', 'time between pings', '1')
      .option('-W, --timeout <seconds>', 'how long to wait for each reply', '10'),
  );
}

/** The SIDs a daemon knows: its neighbours, route destinations and next hops. */
export async function knownSids(client: MeshgwClient): Promise<Uint8Array[]> {
  const [neighbours, routes] = await Promise.all([client.neighbours(), client.routes()]);
  return [...neighbours.map((n) => n.sid), ...routes.flatMap((r) => [r.destination, r.nextHop])];
}

/** Resolves a SID or prefix as typed against what the daemon knows. */
export async function resolveSid(client: MeshgwClient, text: string): Promise<string> {
  const prefix = parseSidPrefix(text);
  if (prefix.length === SID_HEX_DIGITS) return prefix;
  return resolveSidPrefix(prefix, await knownSids(client));
}

export interface PingSummary {
  transmitted: number;
  received: number;
  rtts: number[];
  elapsedMs: number;
}

/** ping(8)'s last two lines. */
export function formatPingSummary(name: string, s: PingSummary): string {
  const loss = s.transmitted === 0 ? 0 : Math.round(((s.transmitted - s.received) / s.transmitted) * 100);
  let out = `--- ${name} ping statistics ---\n`;
  out += `${s.transmitted} packets transmitted, ${s.received} received, ${loss}% packet loss, time ${Math.round(s.elapsedMs)} ms\n`;
  if (s.rtts.length > 0) {
    const min = Math.min(...s.rtts);
    const max = Math.max(...s.rtts);
    const avg = s.rtts.reduce((a, b) => a + b, 0) / s.rtts.length;
    const mdev = Math.sqrt(s.rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / s.rtts.length);
    out += `rtt min/avg/max/mdev = ${[min, avg, max, mdev].map((x) => x.toFixed(3)).join('/')} ms\n`;
  }
  return out;
}

export async function runPingCommand(sidText: string, opts: PingOptions): Promise<void> {
  const count = opts.count !== undefined ? parseIntOption('--count', opts.count, 1, 1_000_000) : undefined;
  const size = parseIntOption('--size', opts.size, 0, 65_535);
  const intervalMs = parseNumberOption('--interval', opts.interval, 0.01, 3600) * 1000;
  const timeoutMs = Math.round(parseNumberOption('--timeout', opts.timeout, 0.1, 3600) * 1000);
  parseSidPrefix(sidText); // a malformed SID is a usage error before any connection
  const anyReply = await withApi(opts, async (client) => {
    const sid = await resolveSid(client, sidText);
    const name = shortSid(sid);
    const out = (line: string): void => void process.stdout.write(line + '\n');
    out(`PING ${name} (${sid}): ${size} data bytes`);
    const summary: PingSummary = { transmitted: 0, received: 0, rtts: [], elapsedMs: 0 };
    const started = performance.now();
    let stopped = false;
    let fatal: Error | undefined;
    let wake: (() => void) | undefined;
    const onSignal = (): void => {
      stopped = true;
      wake?.();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const inflight = new Set<Promise<void>>();
    try {
      for (let seq = 1; count === undefined || seq <= count; seq++) {
        if (stopped || fatal) break;
        summary.transmitted++;
        const p: Promise<void> = client.ping(sid, { size, timeoutMs }).then(
          (r) => {
            if (stopped) return;
            summary.received++;
            summary.rtts.push(r.rttMs);
            out(`${size} bytes from ${name}: seq=${seq} hops=${r.hops} time=${r.rttMs.toFixed(1)} ms`);
          },
          (e: unknown) => {
            if (stopped) return;
            if (e instanceof MeshgwApiError && (e.code === 'too-large' || e.code === 'bad-request' || e.code === 'closed')) {
              fatal ??= new Error(
                e.code === 'too-large' && e.maxBytes !== undefined ? `${e.message} (give -s ${e.maxBytes} or less)` : e.message,
              );
              wake?.();
            } else if (e instanceof MeshgwApiError && e.code === 'timeout') {
              // A lost ping: counted in the summary, like ping(8).
            } else {
              out(`From ${name}: seq=${seq} ${e instanceof MeshgwApiError ? `${e.code}: ` : ''}${(e as Error).message}`);
            }
          },
        );
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        if (count !== undefined && seq === count) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, intervalMs);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
      // Wait for the outstanding replies unless interrupted.
      while (!stopped && !fatal && inflight.size > 0) {
        await Promise.race([
          Promise.all([...inflight]),
          new Promise<void>((resolve) => {
            wake = resolve;
          }),
        ]);
        wake = undefined;
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    stopped = true;
    if (fatal) throw fatal;
    summary.elapsedMs = performance.now() - started;
    process.stdout.write(formatPingSummary(name, summary));
    return summary.received > 0;
  });
  if (!anyReply) process.exitCode = 1;
}
