/**
 * Issue 14: one daemon with three interfaces of different kinds, all up, and a datagram routed
 * across two of them — everything as real processes, started the way a user starts them:
 *
 *                 UDP loopback                 LoRa (pty → emulator ⇄ medium ⇄ emulator → pty)
 *   daemon U ◄──────────────────► daemon G ◄──────────────────────────────────────► daemon L
 *   (--udp, --peer)                 │ --kiss-tcp
 *                                   ▼
 *                         Direwolf A ⇄ AFSK 1200 audio ⇄ Direwolf B ◄── --kiss-tcp ── daemon D
 *
 * - G (the gateway under test) runs `meshgw --udp … --peer … --kiss-tcp … --port PTY --driver
 *   lora --frequency … --sf 7 --bw 500000`; U, L and D each have one interface. Every daemon has
 *   its app API on a free loopback port, its own key and state directory.
 * - The LoRa side: two socat pty pairs, a `meshgw modem-emulator` on the modem end of each, both
 *   on one simulated medium (`--medium`, a block of UDP ports), real time (`--time-scale 1`).
 *   SF7 on 500 kHz in region none (no duty cycle): HELLOs every 2 s, ~75 ms on the air each.
 * - The Direwolf side: the pair recipe in ../shared/peers/direwolf-pair (two TNCs back to back
 *   through named pipes). D on the far TNC makes the KISS interface carry real traffic: G must
 *   see D as a symmetric neighbour over the audio, not just a TCP connection that is open.
 *
 * What it checks: G's status (app API) lists udp, kiss-tcp and lora-serial interfaces, all 'up';
 * G has U, D and L as symmetric neighbours on the right interfaces; U has a two-hop route to L
 * through G; then an app on U sends a datagram to L's SID, and an app on L bound to that port gets
 * it with the same bytes, from U's SID and port.
 *
 * The simulated LoRa channel is ALOHA: no carrier sense, collisions and half duplex lose both
 * frames. G's and L's HELLOs go every 2 s with only 10 % jitter, so once their HELLOs fall into
 * the same slot they can collide several rounds in a row and the G–L link drops for a while (seen
 * here at 250 kHz, where a HELLO takes 150 ms: 15 HELLO rounds in a row collided, both sides lost
 * the other for 30 s). Hence 500 kHz (half the airtime, far fewer such runs), and a datagram that
 * is sent again — after its route is back, if it went — until one arrives; what arrives must be
 * exactly what was sent.
 *
 * Deadlines are failure guards only (generous, for a busy 2-core machine); nothing asserts a time.
 * socat or direwolf missing is a failure that says what to install. Every process runs in its
 * own process group and is stopped (SIGTERM, then SIGKILL) in afterAll; temp dirs are removed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MeshgwApiError, MeshgwClient, sidToHex, type MeshgwDatagramSocket } from '../src/index.js';
import { MEDIUM_SLOTS } from '../firmware-protocol/emulator/medium.js';
import { freeTcpPort, freeUdpPort } from './free-ports.js';
import { openPtyPair, requireSocat, type PtyPair } from './hil/pty.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));
const recipe = fileURLToPath(new URL('../../shared/peers/direwolf-pair/', import.meta.url));
const run = promisify(execFile);

/** The LoRa channel of G and L: fast settings, so HELLOs and data take milliseconds of air. */
const LORA = ['--driver', 'lora', '--frequency', '869525000', '--bw', '500000', '--sf', '7', '--cr', '5', '--tx-power', '14'];
/** A datagram port on L that nothing else uses (mesh ports are 0..255). */
const APP_PORT = 42;
/**
 * How long the mesh part of the test may take in all before it fails: a guard, not a measurement.
 * It usually needs 5–20 s. A TC of G lost on the LoRa channel is only repaired by G's next one,
 * and G's TC interval is twice its slowest HELLO interval — the AFSK 1200 interface's, ~45 s —
 * so each such loss adds up to ~45 s (seen: 57 s and 80 s in all); this allows several in a row.
 */
const MESH_DEADLINE_MS = 240_000;
/** When the waits give up (set when the test starts). */
let giveUpAt = Infinity;

// ------------------------------------------------------------------------------ processes

/** A child process in its own process group, with its output kept for failure messages. */
interface Proc {
  name: string;
  child: ChildProcess;
  output(): string;
}

const procs: Proc[] = [];
const tempDirs: string[] = [];
const ptys: PtyPair[] = [];
let direwolfDir: string | undefined;

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `meshgw-3if-${prefix}-`));
  tempDirs.push(d);
  return d;
}

/** Starts `node dist/bin/meshgw.js ARGS` and waits until its stderr matches `ready`. */
async function startMeshgw(name: string, args: string[], ready: RegExp): Promise<Proc> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let output = '';
  child.stderr!.on('data', (b: Buffer) => {
    output += b.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  });
  const proc: Proc = { name, child, output: () => output };
  procs.push(proc);
  const deadline = Date.now() + 20_000;
  while (!ready.test(output)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} (meshgw ${args.join(' ')}) exited ${child.exitCode ?? child.signalCode} before it was ready:\n${output}`);
    }
    if (Date.now() > deadline) throw new Error(`${name} (meshgw ${args.join(' ')}) was not ready within 20 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return proc;
}

/** SIGTERM to the process group, SIGKILL if it is still there after 10 s. */
async function stopProc(p: Proc): Promise<void> {
  const { child } = p;
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const signal = (s: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, s);
    } catch {
      // Already gone.
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
  signal('SIGKILL'); // anything the group left behind
}

interface RunningDaemon {
  name: string;
  proc: Proc;
  client: MeshgwClient;
  sid: string;
}

const daemons: RunningDaemon[] = [];
const clients: MeshgwClient[] = [];

/** Each daemon's interfaces, neighbours and routes, other daemons by name, for a failure message. */
async function meshState(): Promise<string> {
  const nameOf = (sid: Uint8Array): string => daemons.find((d) => d.sid === sidToHex(sid))?.name ?? sidToHex(sid).slice(0, 8);
  const lines: string[] = [];
  for (const d of daemons) {
    try {
      const s = await d.client.status();
      const ns = await d.client.neighbours();
      const rs = await d.client.routes();
      lines.push(
        `${d.name}: interfaces ${s.interfaces.map((i) => `${i.name}=${i.state}`).join(' ')}; ` +
          `neighbours ${ns.map((n) => `${nameOf(n.sid)}@${n.interface}${n.symmetric ? '' : '(asym)'}`).join(' ') || 'none'}; ` +
          `routes ${rs.map((r) => `${nameOf(r.destination)} via ${nameOf(r.nextHop)}`).join(', ') || 'none'}`,
      );
    } catch (err) {
      lines.push(`${d.name}: no answer from its API (${(err as Error).message})`);
    }
  }
  return lines.join('\n');
}

/** Every process's name and the tail of its log, for a failure message. */
function logs(): string {
  return procs.map((p) => `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'}):\n${p.output().slice(-3_000)}`).join('\n');
}

// ------------------------------------------------------------------------------ the pieces

function requireDirewolf(): void {
  if (spawnSync('direwolf', ['-h'], { stdio: 'ignore' }).error) {
    throw new Error('direwolf is required for the three-interface daemon test: install it with `apt-get install -y direwolf`');
  }
  if (!existsSync(join(recipe, 'start.sh'))) throw new Error(`the Direwolf recipe is missing: expected ${recipe}start.sh (../shared/peers/direwolf-pair)`);
}

/** Two Direwolf TNCs back to back (the recipe); their KISS TCP ports. */
async function startDirewolfPair(): Promise<{ a: number; b: number }> {
  direwolfDir = tempDir('direwolf');
  const a = await freeTcpPort();
  let b = await freeTcpPort();
  while (b === a) b = await freeTcpPort();
  try {
    await run('sh', [join(recipe, 'start.sh'), direwolfDir, String(a), String(b)], { timeout: 30_000 });
  } catch (err) {
    const log = (f: string): string => (existsSync(join(direwolfDir!, f)) ? readFileSync(join(direwolfDir!, f), 'utf8') : '(none)');
    throw new Error(`the Direwolf pair did not start: ${(err as Error).message}\na.log:\n${log('a.log')}\nb.log:\n${log('b.log')}`);
  }
  return { a, b };
}

async function stopDirewolfPair(): Promise<void> {
  if (direwolfDir === undefined) return;
  const pids = ['a.pid', 'b.pid']
    .map((f) => join(direwolfDir!, f))
    .filter((f) => existsSync(f))
    .map((f) => Number(readFileSync(f, 'utf8').trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
  await run('sh', [join(recipe, 'stop.sh'), direwolfDir]).catch(() => undefined);
  // stop.sh sends SIGTERM; make sure they are gone before their directory is removed.
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 5_000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
}

/**
 * A base port for the emulators' medium: a block of MEDIUM_SLOTS UDP ports below the kernel's
 * ephemeral range (where free-ports.ts finds the daemons' ports), all free right now.
 */
async function freeMediumBase(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    const sockets: ReturnType<typeof createSocket>[] = [];
    let ok = true;
    for (let i = 0; i < MEDIUM_SLOTS && ok; i++) {
      const s = createSocket('udp4');
      sockets.push(s);
      ok = await new Promise<boolean>((r) => {
        s.once('error', () => r(false));
        s.bind(base + i, '127.0.0.1', () => r(true));
      });
    }
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    if (ok) return base;
  }
  throw new Error('no free block of UDP ports for the emulator medium');
}

/** A pty pair with a `meshgw modem-emulator` on its modem end; the host end, for a daemon. */
async function startLoraModem(name: string, medium: number): Promise<string> {
  const pty = await openPtyPair(name);
  ptys.push(pty);
  tempDirs.push(dirname(pty.host));
  await startMeshgw(`emulator ${name}`, ['modem-emulator', '--serial', pty.modem, '--medium', `127.0.0.1:${medium}`, '--time-scale', '1'], /modem emulator on /);
  return pty.host;
}

/** A `meshgw` daemon with `interfaceArgs`, its API on a free port, its own key and state. */
async function startDaemon(name: string, interfaceArgs: string[]): Promise<RunningDaemon> {
  const dir = tempDir(name);
  mkdirSync(join(dir, 'state'));
  const api = await freeTcpPort();
  const args = [...interfaceArgs, '--region', 'none', '--api', `127.0.0.1:${api}`, '--key', join(dir, 'key.json'), '--state-dir', join(dir, 'state'), '--status-interval', '0'];
  const proc = await startMeshgw(`daemon ${name}`, args, /meshgw running/);
  const client = await MeshgwClient.connect({ port: api });
  clients.push(client);
  const sid = sidToHex((await client.status()).sid);
  const daemon = { name: name.toUpperCase(), proc, client, sid };
  daemons.push(daemon);
  return daemon;
}

/** Polls `probe` every 250 ms until it returns something other than undefined; fails at `giveUpAt`. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > giveUpAt) {
      const last = lastError ? ` (last error: ${(lastError as Error).message})` : '';
      throw new Error(`gave up after ${MESH_DEADLINE_MS / 1000} s in all waiting for ${what}${last}\n${await meshState()}\n${logs()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ------------------------------------------------------------------------------ the test

describe('one daemon with UDP, KISS TCP to Direwolf and LoRa to the modem emulator', () => {
  let g: RunningDaemon;
  let u: RunningDaemon;
  let l: RunningDaemon;
  let d: RunningDaemon;

  beforeAll(async () => {
    requireSocat();
    requireDirewolf();
    const direwolf = await startDirewolfPair();
    const medium = await freeMediumBase();
    const loraG = await startLoraModem('g', medium);
    const loraL = await startLoraModem('l', medium);
    const udpG = await freeUdpPort();
    let udpU = await freeUdpPort();
    while (udpU === udpG) udpU = await freeUdpPort();

    g = await startDaemon('g', [
      '--udp', `127.0.0.1:${udpG}`, '--peer', `127.0.0.1:${udpU}`,
      '--kiss-tcp', `127.0.0.1:${direwolf.a}`,
      '--port', loraG, ...LORA,
    ]);
    u = await startDaemon('u', ['--udp', `127.0.0.1:${udpU}`, '--peer', `127.0.0.1:${udpG}`]);
    l = await startDaemon('l', ['--port', loraL, ...LORA]);
    d = await startDaemon('d', ['--kiss-tcp', `127.0.0.1:${direwolf.b}`]);
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    // Daemons first (they hold the ptys and TNC connections), then emulators, socat, Direwolf.
    const isDaemon = (p: Proc): boolean => daemons.some((d) => d.proc === p);
    await Promise.all(procs.filter(isDaemon).map(stopProc));
    await Promise.all(procs.filter((p) => !isDaemon(p)).map(stopProc));
    for (const pty of ptys) pty.close();
    await stopDirewolfPair();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('has all three interfaces up, and routes a datagram from the UDP side to a node behind the LoRa emulator', async () => {
    const start = Date.now();
    giveUpAt = start + MESH_DEADLINE_MS;
    const took: string[] = [];
    const mark = (what: string): void => void took.push(`${what} ${((Date.now() - start) / 1000).toFixed(1)} s`);
    // 1. G's three interfaces, each of its kind, all up.
    const ifaces = await waitFor("G's three interfaces to be up", async () => {
      const s = await g.client.status();
      return s.interfaces.length === 3 && s.interfaces.every((i) => i.state === 'up') ? s.interfaces : undefined;
    });
    expect(ifaces.map((i) => i.kind).sort()).toEqual(['kiss-tcp', 'lora-serial', 'udp']);
    mark('interfaces up');
    const nameOf = (kind: string): string => ifaces.find((i) => i.kind === kind)!.name;

    // 2. G hears a node on each: U over UDP, D over the Direwolf audio, L over the LoRa medium.
    const expected = new Map([
      [u.sid, nameOf('udp')],
      [d.sid, nameOf('kiss-tcp')],
      [l.sid, nameOf('lora-serial')],
    ]);
    await waitFor('G to have U, D and L as symmetric neighbours', async () => {
      const ns = await g.client.neighbours();
      const ok = [...expected].every(([sid, iface]) => ns.some((n) => sidToHex(n.sid) === sid && n.interface === iface && n.symmetric));
      return ok ? true : undefined;
    });
    mark('neighbours');
    const onLora = (await g.client.neighbours()).find((n) => sidToHex(n.sid) === l.sid);
    expect(onLora?.rssiDbm).toBeDefined(); // heard through a modem, with its signal report

    // 3. Routes both ways between U and L, through G (L must know U to accept its datagram).
    const uToL = await waitFor('a route from U to L', async () => (await u.client.routes()).find((r) => sidToHex(r.destination) === l.sid));
    expect(sidToHex(uToL.nextHop)).toBe(g.sid);
    expect(uToL.interface).toBe((await u.client.status()).interfaces[0]!.name); // U has only its UDP interface
    expect(uToL.hops).toBe(2);
    mark('route U→L');
    const lToU = await waitFor('a route from L to U', async () => (await l.client.routes()).find((r) => sidToHex(r.destination) === u.sid));
    expect(sidToHex(lToU.nextHop)).toBe(g.sid);
    mark('route L→U');

    // 4. An app on L listens; an app on U sends. Sent again while nothing has arrived (a LoRa
    //    collision loses a frame; see the header); what arrives must be what was sent.
    const deliver = async (size: number, port: number): Promise<number> => {
      const inbox = await l.client.bind(port);
      const outbox = await u.client.bind();
      const payload = randomBytes(size);
      const received = receiveOne(inbox);
      received.catch(() => undefined); // a failure below is reported as itself, not as this
      let sends = 0;
      let got: Awaited<typeof received> | undefined;
      while (got === undefined) {
        if (Date.now() > giveUpAt) throw new Error(`the ${size}-byte datagram did not reach L after ${sends} send(s)\n${await meshState()}\n${logs()}`);
        try {
          await outbox.send(l.sid, port, payload);
          sends++;
        } catch (err) {
          // The route went while the G–L link was down (HELLOs collided); send once it is back.
          if (!(err instanceof MeshgwApiError && (err.code === 'no-route' || err.code === 'no-key'))) throw err;
          await waitFor('the route from U to L to come back', async () => (await u.client.routes()).find((r) => sidToHex(r.destination) === l.sid));
          continue;
        }
        got = await within(received, 10_000);
      }
      expect(Buffer.from(got.data).equals(payload)).toBe(true);
      expect(sidToHex(got.sid)).toBe(u.sid);
      expect(got.port).toBe(outbox.port);
      await inbox.close();
      await outbox.close();
      return sends;
    };
    const sends = await deliver(Math.min(100, uToL.maxPayload), APP_PORT);
    mark(`datagram at L (${sends} send${sends === 1 ? '' : 's'})`);
    // 5. The largest datagram the path takes: the LoRa hop's 507-byte frames (two LoRa packets
    //    through the emulated RNodes) carry it in one mesh frame, with one mesh header.
    expect(uToL.maxPayload).toBeGreaterThan(400);
    const bigSends = await deliver(uToL.maxPayload, APP_PORT + 1);
    mark(`${uToL.maxPayload}-byte datagram at L (${bigSends} send${bigSends === 1 ? '' : 's'})`);
    console.log(`three interfaces, from the start of the test: ${took.join(', ')}`);
  }, MESH_DEADLINE_MS + 30_000);
});

/** What `p` resolves with, or undefined if it has not within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first datagram a socket receives. */
async function receiveOne(socket: MeshgwDatagramSocket): Promise<{ sid: Uint8Array; port: number; data: Uint8Array }> {
  for await (const dgram of socket) return dgram;
  throw new Error('the datagram socket closed before anything arrived');
}
