/**
 * `meshgw status`, `meshgw neighbors` (or `neighbours`) and `meshgw routes`: a running daemon's
 * state through its API.
 *
 * Output is an aligned table with units and ages ("12 s ago"), the same on a terminal and in a
 * pipe (stable, no colours); `--json` prints one JSON document instead, whose field names are the
 * contract for scripts (README, "Talking to a running daemon"). SIDs are full hex in JSON; tables
 * show the shortest prefix (at least 12 digits) that keeps the SIDs shown unique, which every
 * command that takes a SID accepts.
 */
import type { Command } from 'commander';
import type { DaemonStatus, Neighbour, Route } from '../api/client.js';
import { apiOptions, withApi, type ApiOptions } from './api-connect.js';
import { hexOfSid, shortSid, uniquePrefixLength } from './sid.js';

export interface StateOptions extends ApiOptions {
  json?: boolean;
}

// ---------------------------------------------------------------- JSON shapes (the contract)

export interface StatusJson {
  sid: string;
  version: string;
  /** ms since the daemon started. */
  uptime: number;
  simulated: boolean;
  interfaces: Array<{
    name: string;
    kind: string;
    state: string;
    mtu: number;
    bitRate: number;
    airtime: Array<{ name: string; windowMs: number; usedMs: number; leftMs: number }>;
    queuedFrames: number;
    queuedBytes: number;
    counters: { framesSent: number; framesReceived: number; bytesSent: number; bytesReceived: number; framesRefused: number };
  }>;
}

export interface NeighbourJson {
  sid: string;
  interface: string;
  symmetric: boolean;
  inRatio: number;
  outRatio: number;
  rssiDbm?: number;
  snrDb?: number;
  /** ms ago. */
  lastHeard: number;
}

export interface RouteJson {
  destination: string;
  nextHop: string;
  interface: string;
  hops: number;
  metric: number;
  pathMtu: number;
  maxPayload: number;
}

export function statusJson(s: DaemonStatus): StatusJson {
  return {
    sid: hexOfSid(s.sid),
    version: s.version,
    uptime: s.uptimeMs,
    simulated: s.simulated,
    interfaces: s.interfaces.map((i) => ({
      name: i.name,
      kind: i.kind,
      state: i.state,
      mtu: i.mtu,
      bitRate: i.bitRate,
      airtime: i.airtime.map((w) => ({ name: w.name, windowMs: w.windowMs, usedMs: w.usedMs, leftMs: w.leftMs })),
      queuedFrames: i.queuedFrames,
      queuedBytes: i.queuedBytes,
      counters: { ...i.counters },
    })),
  };
}

export function neighboursJson(list: Neighbour[]): NeighbourJson[] {
  return list.map((n) => ({
    sid: hexOfSid(n.sid),
    interface: n.interface,
    symmetric: n.symmetric,
    inRatio: n.inRatio,
    outRatio: n.outRatio,
    ...(n.rssiDbm !== undefined ? { rssiDbm: n.rssiDbm } : {}),
    ...(n.snrDb !== undefined ? { snrDb: n.snrDb } : {}),
    lastHeard: n.lastHeardMsAgo,
  }));
}

export function routesJson(list: Route[]): RouteJson[] {
  return list.map((r) => ({
    destination: hexOfSid(r.destination),
    nextHop: hexOfSid(r.nextHop),
    interface: r.interface,
    hops: r.hops,
    metric: r.metric,
    pathMtu: r.pathMtu,
    maxPayload: r.maxPayload,
  }));
}

// ---------------------------------------------------------------- units

/** How long ago, for people: "just now", "12 s ago", "3 min ago", "5 h ago", "2 d ago". */
export function formatAge(msAgo: number): string {
  if (!Number.isFinite(msAgo) || msAgo < 0) return 'unknown';
  if (msAgo < 1000) return 'just now';
  const s = Math.floor(msAgo / 1000);
  if (s < 60) return `${s} s ago`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

/** A span of time in two units at most: "12 s", "5 min 3 s", "2 h 5 min", "3 d 4 h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ${s % 60} s`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** Airtime amounts: "0 ms", "450 ms", "12.3 s", "4.5 min", "1.5 h". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${trim(ms / 1000)} s`;
  if (ms < 3_600_000) return `${trim(ms / 60_000)} min`;
  return `${trim(ms / 3_600_000)} h`;
}

/** Bytes in SI units: "512 B", "1.2 kB", "3.4 MB". */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${trim(n / 1e3)} kB`;
  if (n < 1e9) return `${trim(n / 1e6)} MB`;
  return `${trim(n / 1e9)} GB`;
}

export function formatBitRate(bps: number): string {
  if (bps <= 0) return 'unknown';
  if (bps < 1000) return `${trim(bps)} bit/s`;
  if (bps < 1e6) return `${trim(bps / 1e3)} kbit/s`;
  return `${trim(bps / 1e6)} Mbit/s`;
}

function trim(x: number): string {
  return x >= 100 ? String(Math.round(x)) : x.toFixed(1).replace(/\.0$/, '');
}

function percent(ratio: number): string {
  return `${Math.round(ratio * 100)} %`;
}

// ---------------------------------------------------------------- tables

export type Align = 'left' | 'right';

/** An aligned table: two spaces between columns, no trailing blanks. */
export function formatTable(headers: string[], rows: string[][], align: Align[] = []): string {
  const widths = headers.map((h, c) => Math.max(width(h), ...rows.map((r) => width(r[c] ?? ''))));
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => {
        const pad = ' '.repeat(Math.max(0, widths[c]! - width(cell)));
        return align[c] === 'right' ? pad + cell : c === cells.length - 1 ? cell : cell + pad;
      })
      .join('  ')
      .replace(/\s+$/, '');
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

function width(s: string): number {
  return [...s].length;
}

export function formatStatus(s: DaemonStatus): string {
  const head = formatTable(
    ['sid', hexOfSid(s.sid)],
    [
      ['version', s.version],
      ['uptime', formatDuration(s.uptimeMs)],
      ['simulated', s.simulated ? 'yes (no real radio)' : 'no'],
      ['interfaces', String(s.interfaces.length)],
    ],
  );
  let out = head;
  if (s.interfaces.length > 0) {
    out +=
      '\n' +
      formatTable(
        ['INTERFACE', 'KIND', 'STATE', 'MTU', 'BIT RATE', 'QUEUED', 'SENT', 'RECEIVED', 'REFUSED'],
        s.interfaces.map((i) => [
          i.name,
          i.kind,
          i.state,
          `${i.mtu} B`,
          formatBitRate(i.bitRate),
          `${i.queuedFrames} (${formatBytes(i.queuedBytes)})`,
          `${i.counters.framesSent} (${formatBytes(i.counters.bytesSent)})`,
          `${i.counters.framesReceived} (${formatBytes(i.counters.bytesReceived)})`,
          String(i.counters.framesRefused),
        ]),
        ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
      );
    const windows = s.interfaces.flatMap((i) => i.airtime.map((w) => ({ i, w })));
    if (windows.length > 0) {
      out +=
        '\n' +
        formatTable(
          ['INTERFACE', 'AIRTIME BUDGET', 'WINDOW', 'USED', 'LEFT'],
          windows.map(({ i, w }) => {
            const total = w.usedMs + w.leftMs;
            return [
              i.name,
              w.name,
              formatMs(w.windowMs),
              formatMs(w.usedMs),
              `${formatMs(w.leftMs)}${total > 0 && Number.isFinite(total) ? ` (${percent(w.leftMs / total)})` : ''}`,
            ];
          }),
          ['left', 'left', 'right', 'right', 'right'],
        );
    }
  }
  return out;
}

export function formatNeighbours(list: Neighbour[]): string {
  if (list.length === 0) return 'no neighbours heard yet\n';
  const digits = uniquePrefixLength(list.map((n) => n.sid));
  return formatTable(
    ['SID', 'INTERFACE', 'SYMMETRIC', 'IN', 'OUT', 'RSSI', 'SNR', 'LAST HEARD'],
    list.map((n) => [
      shortSid(n.sid, digits),
      n.interface,
      n.symmetric ? 'yes' : 'no',
      percent(n.inRatio),
      percent(n.outRatio),
      n.rssiDbm !== undefined ? `${trim(n.rssiDbm)} dBm` : '-',
      n.snrDb !== undefined ? `${trim(n.snrDb)} dB` : '-',
      formatAge(n.lastHeardMsAgo),
    ]),
    ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right'],
  );
}

export function formatRoutes(list: Route[]): string {
  if (list.length === 0) return 'no routes yet\n';
  const digits = uniquePrefixLength(list.flatMap((r) => [r.destination, r.nextHop]));
  return formatTable(
    ['DESTINATION', 'NEXT HOP', 'INTERFACE', 'HOPS', 'METRIC', 'PATH MTU', 'MAX PAYLOAD'],
    list.map((r) => [
      shortSid(r.destination, digits),
      shortSid(r.nextHop, digits),
      r.interface,
      String(r.hops),
      `${r.metric < 10 ? r.metric.toFixed(3) : trim(r.metric)} ms/B`,
      `${r.pathMtu} B`,
      `${r.maxPayload} B`,
    ]),
    ['left', 'left', 'left', 'right', 'right', 'right', 'right'],
  );
}

// ---------------------------------------------------------------- commands

export function stateOptions(cmd: Command): Command {
  return apiOptions(cmd).option('--json', 'print one JSON document (field names as in the README) instead of a table');
}

function print(text: string): void {
  process.stdout.write(text);
}

export async function runStatusCommand(opts: StateOptions): Promise<void> {
  const s = await withApi(opts, (c) => c.status());
  print(opts.json ? JSON.stringify(statusJson(s), null, 2) + '\n' : formatStatus(s));
}

export async function runNeighboursCommand(opts: StateOptions): Promise<void> {
  const list = await withApi(opts, (c) => c.neighbours());
  print(opts.json ? JSON.stringify(neighboursJson(list), null, 2) + '\n' : formatNeighbours(list));
}

export async function runRoutesCommand(opts: StateOptions): Promise<void> {
  const list = await withApi(opts, (c) => c.routes());
  print(opts.json ? JSON.stringify(routesJson(list), null, 2) + '\n' : formatRoutes(list));
}
