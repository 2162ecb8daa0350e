/**
 * The daemon's Prometheus metrics (src/gateway/metrics.ts): a real daemon on a simulated radio,
 * scraped over HTTP, the text parsed as Prometheus would — every family with its type, counters
 * that grow as the node sends HELLOs, the simulated neighbour counted, the node's SID in
 * meshgw_info, 404 elsewhere, and a port in use refused with its address. The daemon's sim
 * interface has no airtime budget, so the budget windows are read from a gateway composed here
 * with an operator's cap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gauge } from 'prom-client';
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { SimMedium } from '../drivers/sim.js';
import { startDaemon, type Daemon } from '../src/gateway/daemon.js';
import { Gateway } from '../src/gateway/gateway.js';
import { DaemonMetrics } from '../src/gateway/metrics.js';
import { MonotonicClock } from '../src/link/clock.js';
import { generateIdentity, sidHex } from '../src/mesh/identity.js';
import { MeshNode } from '../src/mesh/node.js';
import { MspService } from '../src/msp/service.js';

const FAMILIES: Array<[string, PrometheusFamily['type']]> = [
  ['meshgw_info', 'GAUGE'],
  ['meshgw_uptime_seconds', 'GAUGE'],
  ['meshgw_interface_up', 'GAUGE'],
  ['meshgw_interface_frames_total', 'COUNTER'],
  ['meshgw_interface_bytes_total', 'COUNTER'],
  ['meshgw_interface_drops_total', 'COUNTER'],
  ['meshgw_interface_send_refused_total', 'COUNTER'],
  ['meshgw_interface_decode_errors_total', 'COUNTER'],
  ['meshgw_interface_reconnects_total', 'COUNTER'],
  ['meshgw_interface_queue_frames', 'GAUGE'],
  ['meshgw_interface_queue_bytes', 'GAUGE'],
  ['meshgw_interface_blocked', 'GAUGE'],
  ['meshgw_interface_airtime_seconds_total', 'COUNTER'],
  ['meshgw_interface_duty_cycle_ratio', 'GAUGE'],
  ['meshgw_interface_duty_cycle_limit_ratio', 'GAUGE'],
  ['meshgw_interface_airtime_left_seconds', 'GAUGE'],
  ['meshgw_neighbours', 'GAUGE'],
  ['meshgw_routes', 'GAUGE'],
  ['meshgw_mesh_datagrams_sent_total', 'COUNTER'],
  ['meshgw_mesh_datagrams_delivered_total', 'COUNTER'],
  ['meshgw_mesh_datagrams_forwarded_total', 'COUNTER'],
  ['meshgw_mesh_refused_total', 'COUNTER'],
  ['meshgw_mesh_dropped_total', 'COUNTER'],
  ['meshgw_mesh_listener_errors_total', 'COUNTER'],
  ['meshgw_msp_sockets_opened_total', 'COUNTER'],
  ['meshgw_msp_connections_accepted_total', 'COUNTER'],
  ['meshgw_msp_messages_delivered_total', 'COUNTER'],
  ['meshgw_msp_bytes_delivered_total', 'COUNTER'],
  ['meshgw_msp_handler_errors_total', 'COUNTER'],
  ['meshgw_msp_packets_sent_total', 'COUNTER'],
  ['meshgw_msp_send_refused_total', 'COUNTER'],
  ['meshgw_api_connections_total', 'COUNTER'],
  ['meshgw_api_requests_total', 'COUNTER'],
  ['meshgw_api_refused_auth_total', 'COUNTER'],
  ['meshgw_api_errors_total', 'COUNTER'],
  // prom-client's process metrics, under the same prefix.
  ['meshgw_process_cpu_user_seconds_total', 'COUNTER'],
  ['meshgw_process_start_time_seconds', 'GAUGE'],
  ['meshgw_nodejs_eventloop_lag_seconds', 'GAUGE'],
];

let dir: string;
let daemon: Daemon | undefined;
let metrics: DaemonMetrics | undefined;
let base: string;
let port: number;

/** Polls `check` every 50 ms until it is true; fails naming `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function scrape(): Promise<Map<string, PrometheusFamily>> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(metrics!.contentType);
  const families = parsePrometheusTextFormat(await res.text());
  return new Map(families.map((f) => [f.name, f]));
}

/** The value of the one sample of `name` whose labels include `labels`. */
function value(families: Map<string, PrometheusFamily>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  if (!family) throw new Error(`no family ${name}`);
  const matching = family.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (matching.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${matching.length} samples match, expected 1`);
  return Number(matching[0]!.value);
}

const framesOut = (f: Map<string, PrometheusFamily>): number => value(f, 'meshgw_interface_frames_total', { interface: 'sim0', direction: 'out' });

describe('daemon metrics', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgw-metrics-'));
    daemon = await startDaemon({
      interfaces: [{ kind: 'sim' }],
      region: 'none',
      keyFile: join(dir, 'identity.json'),
      stateDir: join(dir, 'state'),
      statusIntervalMs: 0,
      api: undefined,
    });
    metrics = new DaemonMetrics(daemon);
    const at = await metrics.listen('127.0.0.1', 0);
    expect(at.host).toBe('127.0.0.1');
    port = at.port;
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await metrics?.close();
    await daemon?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves every family with its type', async () => {
    const families = await scrape();
    for (const [name, type] of FAMILIES) {
      expect(families.get(name), name).toBeDefined();
      expect(families.get(name)!.type, name).toBe(type);
    }
    for (const name of families.keys()) expect(name).toMatch(/^meshgw_[a-z0-9_]+$/);
    expect(value(families, 'meshgw_interface_up', { interface: 'sim0', kind: 'sim' })).toBe(1);
    expect(value(families, 'meshgw_uptime_seconds')).toBeGreaterThanOrEqual(0);
    // Every pacer reason is there from the start, at zero or more.
    for (const reason of ['dwell', 'too-large', 'queue-full', 'flow-full', 'evicted', 'superseded']) {
      expect(value(families, 'meshgw_interface_drops_total', { interface: 'sim0', layer: 'pacer', reason })).toBeGreaterThanOrEqual(0);
    }
  });

  it('meshgw_info carries the version and the daemon’s SID', async () => {
    const info = (await scrape()).get('meshgw_info')!;
    expect(info.metrics).toHaveLength(1);
    expect(info.metrics[0]!.value).toBe('1');
    expect(info.metrics[0]!.labels?.sid).toBe(sidHex(daemon!.identity.sid));
    expect(info.metrics[0]!.labels?.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('counts the frames the node sends, growing between scrapes', async () => {
    let first = 0;
    await waitFor('a first frame out on sim0', async () => (first = framesOut(await scrape())) > 0);
    // The node keeps sending HELLOs: the link's own counter moves on, then a scrape shows it.
    const link = daemon!.gateway.registry.get('sim0')!.link;
    await waitFor('another frame out on sim0', () => link.counters.framesOut > first);
    const second = await scrape();
    expect(framesOut(second)).toBeGreaterThan(first);
    expect(value(second, 'meshgw_interface_bytes_total', { interface: 'sim0', direction: 'out' })).toBeGreaterThan(0);
    expect(value(second, 'meshgw_interface_airtime_seconds_total', { interface: 'sim0' })).toBeGreaterThan(0);
    expect(value(second, 'meshgw_mesh_datagrams_sent_total')).toBeGreaterThanOrEqual(0);
  });

  it('counts the simulated neighbour once it is symmetric', async () => {
    await waitFor('a symmetric neighbour on sim0', () => daemon!.node.control.neighbours().some((n) => n.iface === 'sim0' && n.symmetric));
    const families = await scrape();
    expect(value(families, 'meshgw_neighbours', { interface: 'sim0' })).toBe(1);
    expect(value(families, 'meshgw_interface_frames_total', { interface: 'sim0', direction: 'in' })).toBeGreaterThan(0);
  });

  it('answers / with a pointer and anything else with 404', async () => {
    const root = await fetch(`${base}/`);
    expect(root.status).toBe(200);
    expect(await root.text()).toContain('/metrics');
    for (const path of ['/nope', '/metrics/x', '/favicon.ico']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(404);
      await res.text();
    }
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(404);
    await post.text();
  });

  it('answers a failed collection with 500 and one line, and carries on', async () => {
    const other = new DaemonMetrics(daemon!);
    new Gauge({
      name: 'meshgw_broken',
      help: 'a collector that fails',
      registers: [other.registry],
      collect() {
        throw new Error('broken collector\nsecond line');
      },
    });
    const at = await other.listen('127.0.0.1', 0);
    try {
      const res = await fetch(`http://127.0.0.1:${at.port}/metrics`);
      expect(res.status).toBe(500);
      expect(await res.text()).toBe('metrics collection failed: broken collector\n');
      const root = await fetch(`http://127.0.0.1:${at.port}/`);
      expect(root.status).toBe(200);
      await root.text();
    } finally {
      await other.close();
    }
  });

  it('refuses a port in use, naming it', async () => {
    const other = new DaemonMetrics(daemon!);
    try {
      await expect(other.listen('127.0.0.1', port)).rejects.toThrow(`127.0.0.1:${port}`);
    } finally {
      await other.close();
    }
  });
});

describe('daemon metrics of an interface with an airtime budget', () => {
  it('reports the airtime used and allowed per window as ratios of the window', async () => {
    const clock = new MonotonicClock();
    const link = new SimMedium({ clock }).attach('sim0');
    const identity = generateIdentity();
    const node = new MeshNode({ identity, epoch: 1 });
    const gateway = new Gateway({ clock, interfaces: [{ link, config: { cap: { shortPercent: 10 } } }], mesh: node });
    await gateway.start();
    try {
      // MSP is not started here: its counters read zero.
      const m = new DaemonMetrics({ identity, node, gateway, msp: new MspService(), api: undefined });
      expect(gateway.send('sim0', new Uint8Array(50)).ok).toBe(true);
      await waitFor('the frame out on sim0', () => link.counters.framesOut > 0);
      const families = new Map(parsePrometheusTextFormat(await m.text()).map((f) => [f.name, f]));
      const windows = families.get('meshgw_interface_duty_cycle_ratio')!.metrics;
      expect(windows.length).toBeGreaterThan(0);
      for (const w of windows) {
        const labels = { interface: 'sim0', window: w.labels!.window! };
        expect(Number(w.value)).toBeGreaterThan(0);
        expect(value(families, 'meshgw_interface_duty_cycle_limit_ratio', labels)).toBeCloseTo(0.1, 6);
        expect(Number(w.value)).toBeLessThanOrEqual(0.1);
        expect(value(families, 'meshgw_interface_airtime_left_seconds', labels)).toBeGreaterThan(0);
      }
      expect(value(families, 'meshgw_msp_packets_sent_total')).toBe(0);
    } finally {
      await gateway.stop();
    }
  });
});
