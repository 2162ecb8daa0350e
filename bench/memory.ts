/**
 * Issue 14's memory goal: the daemon's idle RSS ≤ 80 MB, and ≤ +32 MB under a 10,000-UUID
 * Strokkur flood and a 1,000-identity HELLO flood at once. Part of `npm run bench` (the daemons
 * block); alone: `node dist/bench/memory.js`.
 *
 * What is measured, and how:
 * - The daemon as users run it: the CLI process `node dist/bin/meshgw.js --sim ...`, its RSS read
 *   from /proc/PID/status (VmRSS, VmHWM for the peak) without touching the process (no forced GC,
 *   no inspector). "Settled": one second after the simulated neighbour appeared in the API's
 *   neighbour list (start-up done: key, boot, links, API). "Idle": the same process left alone
 *   until V8's memory reducer has run (it starts ≈ 8 s after the last GC activity and, on this
 *   kind of machine, gives back the young generation start-up grew: ≈ 20 MB; we wait for the drop,
 *   at most IDLE_WAIT_MS).
 * - For comparison: the bench's child harness (bench/daemon-child.ts: startDaemon imported
 *   directly, no CLI, no log) on a simulated radio, and node itself (`node -e`), and node after
 *   importing the daemon's modules only (what bin/meshgw.ts loads for the daemon, after a GC), and
 *   the same plus every subcommand's module (what bin/meshgw.ts loads: its subcommands are imported eagerly).
 * - The flood: daemon A is the CLI on `--sim --udp 127.0.0.1:PA --peer 127.0.0.1:PB`; daemon B a
 *   child harness on PB. An app on A (in this process) listens for Strokkur messages on port
 *   FLOOD_PORT. Then, at once: B sends 10,000 datagrams over the mesh to A:FLOOD_PORT, each the
 *   first source chunk of a message with a UUID of its own (so 10,000 receive states would be
 *   started, none can finish), and this process sends A's UDP port a first HELLO from each of
 *   1,000 throwaway identities (each with its own valid key). A's RSS before, after (one second
 *   later) and its peak (VmHWM) are the figures. The CLI exposes no receiver counters, so the same
 *   flood is sent to a child-harness A as well, which reports what its caps did (receiver states
 *   evicted, new identities refused by admission, datagrams dropped).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MeshgwClient, sidToHex } from '../src/api/client.js';
import { Child, freeUdpPort, helloFlood, helloFloodPackets } from './daemons.js';
import { procRss, type MemoryReport } from './memory-proc.js';

const MB = 1024 * 1024;
const IDENTITIES = 1000;
const UUIDS = 10_000;
const FLOOD_PORT = 99;
/** Each flood chunk: 1 KiB of a 64 KiB message (k = 65), so it fits a 1472-byte UDP MTU too. */
const FLOOD_MESSAGE = 64 * 1024;
const FLOOD_CHUNK = 1024;
/** How long the idle CLI daemon is watched for V8's memory reducer at most, ms. */
const IDLE_WAIT_MS = Number(process.env.BENCH_IDLE_WAIT_MS ?? 30_000);
const GOAL_IDLE = 80;
/** Extra node flags for the CLI daemons (e.g. "--max-semi-space-size=2"), to try V8 settings. */
const CLI_NODE_FLAGS = (process.env.BENCH_CLI_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
const GOAL_FLOOD = 32;

const BIN = fileURLToPath(new URL('../bin/meshgw.js', import.meta.url));
const DIST_SRC = new URL('../src/', import.meta.url);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number | undefined): string => (bytes === undefined ? '?' : (bytes / MB).toFixed(1));

/** A `node dist/bin/meshgw.js` daemon process, its API port and SID parsed from its log. */
class CliDaemon {
  readonly proc: ChildProcess;
  private log = '';
  readonly started: Promise<{ apiPort: number; sid: string }>;

  constructor(args: string[]) {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-bench-mem-'));
    this.proc = spawn(
      process.execPath,
      [...CLI_NODE_FLAGS, BIN, ...args, '--api', '127.0.0.1:0', '--key', join(dir, 'identity.json'), '--state-dir', dir, '--status-interval', '0'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.started = new Promise((resolve, reject) => {
      this.proc.stderr!.setEncoding('utf8');
      this.proc.stderr!.on('data', (text: string) => {
        // Kept only until start-up is read: the log of an idle daemon is a few lines.
        if (this.log.length < 64 * 1024) this.log += text;
        const m = /node ([0-9a-f]{64}) \(boot epoch \d+\); API tcp:\/\/127\.0\.0\.1:(\d+)/.exec(this.log);
        if (m) resolve({ sid: m[1]!, apiPort: Number(m[2]) });
      });
      this.proc.once('exit', (code) => reject(new Error(`meshgw exited (${code}) during start-up: ${this.log.slice(-500)}`)));
      setTimeout(() => reject(new Error(`meshgw did not start within 20 s: ${this.log.slice(-500)}`)), 20_000).unref();
    });
  }

  rss(): { rss: number; hwm: number } | undefined {
    return procRss(this.proc.pid!);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    await Promise.race([exited, sleep(8000)]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

/** Polls `ok` every 100 ms until it holds, or throws after `ms`. */
async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what} within ${ms / 1000} s`);
    await sleep(100);
  }
}

/** Waits until the daemon behind `apiPort` lists a neighbour (start-up settled). */
async function neighbourUp(apiPort: number): Promise<void> {
  const c = await MeshgwClient.connect({ port: apiPort });
  try {
    await until('no neighbour appeared', 20_000, async () => (await c.neighbours()).length > 0);
  } finally {
    await c.close();
  }
}

/** A node process's own memory report as JSON on stdout, after running `script` (an ES module body). */
function nodeReport(script: string, gc: boolean): Promise<MemoryReport> {
  const body = `${script}\n${gc ? 'globalThis.gc();' : ''}\nconst { readFileSync } = await import('node:fs');\nconst s = readFileSync('/proc/self/status', 'utf8');\nconst kb = (f) => Number(new RegExp('^' + f + ':\\\\s+(\\\\d+) kB', 'm').exec(s)?.[1]) * 1024;\nprocess.stdout.write(JSON.stringify({ ...process.memoryUsage(), proc: { rss: kb('VmRSS'), hwm: kb('VmHWM') } }));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...(gc ? ['--expose-gc'] : []), '--input-type=module', '-e', body], (err, stdout) => {
      if (err) reject(err);
      else resolve(JSON.parse(stdout) as MemoryReport);
    });
  });
}

/** The modules bin/meshgw.ts loads for the daemon (commander and run.ts), or with `all` every subcommand's too. */
function importScript(all: boolean): string {
  const mods = ['cli/run.js', 'cli/usage-error.js'];
  if (all) mods.push(...['decode', 'encode', 'modem-emulator', 'airtime', 'init', 'id', 'ports', 'msg', 'messi', 'state', 'ping', 'cat', 'transfer', 'sim'].map((m) => `cli/${m}.js`));
  return [`await import('commander');`, ...mods.map((m) => `await import(${JSON.stringify(new URL(m, DIST_SRC).href)});`)].join('\n');
}

interface FloodFigures {
  before: number;
  after: number;
  peak: number;
  startPeak: number;
  sent: number;
  ms: number;
  received?: number;
  counters?: CapCounters;
}

interface CapCounters {
  strokkur?: { chunks: number; evicted: number; malformed: number; duplicates: number; messages: number; states: number; bufferedBytes: number };
  admissionRefused: number;
  nodesRefused: number;
  linksRefused: number;
  knownNodes: number;
  dropped: Record<string, number>;
}

/**
 * Both floods at once against daemon A (`rssOf` reads its RSS), from daemon B (the Strokkur
 * chunks) and this process (the HELLOs), once B has a route to A and an app on A listens.
 */
async function flood(a: { apiPort: number; sid: string; udpPort: number }, b: Child, bApiPort: number, hellos: Uint8Array[], rssOf: () => { rss: number; hwm: number } | undefined): Promise<FloodFigures> {
  const cb = await MeshgwClient.connect({ port: bApiPort });
  const ca = await MeshgwClient.connect({ port: a.apiPort });
  try {
    await until('B found no route to A', 30_000, async () => (await cb.routes()).some((r) => sidToHex(r.destination) === a.sid));
    const messages = await ca.strokkur.listen(FLOOD_PORT);
    let received = 0;
    const reading = (async () => {
      for await (const _m of messages) received++;
    })();
    await sleep(1000);
    const before = rssOf();
    const [sent] = await Promise.all([
      b.call<{ sent: number; refused: Record<string, number>; ms: number }>({ cmd: 'strokkur-flood', sid: a.sid, port: FLOOD_PORT, count: UUIDS, messageSize: FLOOD_MESSAGE, chunkSize: FLOOD_CHUNK }),
      helloFlood(a.udpPort, hellos),
    ]);
    await sleep(1000);
    const after = rssOf();
    void reading;
    if (received !== 0) throw new Error(`${received} flood messages were delivered: none can complete`);
    return { before: before?.rss ?? NaN, startPeak: before?.hwm ?? NaN, after: after?.rss ?? NaN, peak: after?.hwm ?? NaN, sent: sent.sent, ms: sent.ms };
  } finally {
    await ca.close();
    await cb.close();
  }
}

export async function memoryBench(): Promise<string[]> {
  const lines: string[] = [];
  const hellos = helloFloodPackets(IDENTITIES);
  // Node itself, and node with the daemon's modules only.
  const [bare, mods, allMods] = [await nodeReport('', false), await nodeReport(importScript(false), true), await nodeReport(importScript(true), true)];

  // The idle CLI daemon: started first, watched for the memory reducer while the rest runs.
  const idle = new CliDaemon(['--sim', '--log-level', 'info']);
  const children: Child[] = [];
  const clis: CliDaemon[] = [idle];
  try {
    const idleInfo = await idle.started;
    await neighbourUp(idleInfo.apiPort);
    const idleT0 = Date.now();
    await sleep(1000);
    const settled = idle.rss();

    // The child harness on a simulated radio, for comparison.
    const harness = new Child();
    children.push(harness);
    const h = await harness.call<{ apiPort: number }>({ cmd: 'start', sim: true });
    await neighbourUp(h.apiPort);
    await sleep(1000);
    const harnessMem = await harness.call<MemoryReport>({ cmd: 'memory' });

    // The flood against the CLI daemon.
    const [pA, pB] = [await freeUdpPort(), await freeUdpPort()];
    const cliA = new CliDaemon(['--sim', '--udp', `127.0.0.1:${pA}`, '--peer', `127.0.0.1:${pB}`, '--log-level', 'info']);
    clis.push(cliA);
    const cliAInfo = await cliA.started;
    const bForCli = new Child();
    children.push(bForCli);
    const b1 = await bForCli.call<{ apiPort: number }>({ cmd: 'start', udpPort: pB, peerPort: pA });
    const cliFlood = await flood({ ...cliAInfo, udpPort: pA }, bForCli, b1.apiPort, hellos, () => cliA.rss());

    // The same flood against a child-harness A, which reports its counters.
    const [qA, qB] = [await freeUdpPort(), await freeUdpPort()];
    const hA = new Child();
    const hB = new Child();
    children.push(hA, hB);
    const ha = await hA.call<{ apiPort: number; sid: string }>({ cmd: 'start', udpPort: qA, peerPort: qB });
    const hb = await hB.call<{ apiPort: number }>({ cmd: 'start', udpPort: qB, peerPort: qA });
    const hFlood = await flood({ ...ha, udpPort: qA }, hB, hb.apiPort, hellos, () => procRss(hA.pid));
    hFlood.counters = await hA.call<CapCounters>({ cmd: 'counters' });
    for (const c of [hA, hB, bForCli, harness]) await c.stop();
    await cliA.stop();

    // Back to the idle CLI daemon: wait (bounded) for V8's memory reducer to give memory back.
    let steady = idle.rss();
    while (Date.now() - idleT0 < IDLE_WAIT_MS && steady !== undefined && settled !== undefined && steady.rss > settled.rss - 8 * MB) {
      await sleep(500);
      steady = idle.rss();
    }
    const idleSecs = ((Date.now() - idleT0) / 1000).toFixed(0);

    const pct = (v: number, goal: number): string => `${(v / goal).toFixed(2)} of the goal`;
    const delta = (f: FloodFigures): string => `+${mb(f.after - f.before)} MB after, peak +${mb(f.peak - f.before)} MB`;
    const sr = hFlood.counters.strokkur;
    lines.push(
      `memory (issue 14; goals: idle ≤ ${GOAL_IDLE} MB, ≤ +${GOAL_FLOOD} MB under a ${UUIDS.toLocaleString('en')}-UUID Strokkur flood and a ${IDENTITIES.toLocaleString('en')}-identity HELLO flood at once):`,
      `  CLI idle     node ${CLI_NODE_FLAGS.length > 0 ? CLI_NODE_FLAGS.join(' ') + ' ' : ''}dist/bin/meshgw.js --sim, VmRSS: settled (neighbour up + 1 s) ${mb(settled?.rss)} MB (${settled ? pct(settled.rss / MB, GOAL_IDLE) : '?'}); idle ${idleSecs} s ${mb(steady?.rss)} MB (${steady ? pct(steady.rss / MB, GOAL_IDLE) : '?'}), after V8's memory reducer${steady && settled && steady.rss > settled.rss - 8 * MB ? ' (no drop of 8 MB or more within the wait)' : ''}`,
      `  harness      bench/daemon-child.ts (startDaemon in a forked child, --sim) settled: ${mb(harnessMem.proc?.rss ?? harnessMem.rss)} MB (heap used ${mb(harnessMem.heapUsed)} of ${mb(harnessMem.heapTotal)}, external ${mb(harnessMem.external)}, array buffers ${mb(harnessMem.arrayBuffers)})`,
      `  baselines    node -e '': ${mb(bare.proc?.rss ?? bare.rss)} MB; + the daemon's modules imported (after a GC): ${mb(mods.proc?.rss ?? mods.rss)} MB (heap used ${mb(mods.heapUsed)}); + every subcommand's module too (what the CLI loads): ${mb(allMods.proc?.rss ?? allMods.rss)} MB (heap used ${mb(allMods.heapUsed)})`,
      `  flood (CLI)  ${cliFlood.sent} Strokkur chunks (distinct UUIDs) via B in ${(cliFlood.ms / 1000).toFixed(1)} s + ${IDENTITIES} HELLOs: ${mb(cliFlood.before)} → ${mb(cliFlood.after)} MB, peak ${mb(cliFlood.peak)} MB: ${delta(cliFlood)} (${pct((cliFlood.peak - cliFlood.before) / MB, GOAL_FLOOD)}, peak)`,
      `  flood (harness A) the same: ${mb(hFlood.before)} → ${mb(hFlood.after)} MB, peak ${mb(hFlood.peak)} MB: ${delta(hFlood)} (${pct((hFlood.peak - hFlood.before) / MB, GOAL_FLOOD)}, peak)`,
      `  caps         harness A counted: Strokkur receiver ${sr ? `${sr.chunks} chunks, ${sr.evicted} states evicted, ${sr.states} held (${mb(sr.bufferedBytes)} MB buffered), ${sr.messages} delivered` : 'n/a'}; new identities refused by admission ${hFlood.counters.admissionRefused}, nodes refused ${hFlood.counters.nodesRefused}, known nodes ${hFlood.counters.knownNodes}; dropped ${JSON.stringify(hFlood.counters.dropped)}`,
    );
  } finally {
    for (const c of children) await c.stop().catch(() => undefined);
    for (const c of clis) await c.stop();
  }
  return lines;
}

// `node dist/bench/memory.js`: this part alone.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const line of await memoryBench()) console.log(line);
}
