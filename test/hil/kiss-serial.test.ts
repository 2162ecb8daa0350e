/**
 * kiss-serial over real socat pty pairs to two modem emulators in KISS TNC mode, sharing a
 * simulated medium: CSMA parameters on open, both encapsulations, every size, and reconnect
 * after the pty (the "USB cable") disappears.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startModemEmulator, type RunningModemEmulator } from '../../firmware-protocol/emulator/runner.js';
import { kissSerialLink } from '../../drivers/kiss-serial.js';
import type { KissLink } from '../../drivers/kiss-link.js';
import { openPtyPair, type PtyPair } from './pty.js';
import { collect, frameOfSize, hex, until, waitForState } from './link-helpers.js';

const medium = { host: '127.0.0.1', port: 20_000 + Math.floor(Math.random() * 20_000) };
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function tnc(name: string): Promise<{ pty: PtyPair; emulator: RunningModemEmulator }> {
  const pty = await openPtyPair(name);
  const emulator = await startModemEmulator({ serial: pty.modem, mode: 'kiss-tnc', medium, timeScale: 50 });
  cleanups.push(() => emulator.close(), () => pty.close());
  return { pty, emulator };
}

function link(path: string, name: string, callsign?: string): KissLink {
  const l = kissSerialLink({
    name,
    path,
    ...(callsign ? { callsign } : {}),
    csma: { txDelayMs: 250, persistence: 0.5, slotTimeMs: 50, txTailMs: 20, fullDuplex: true },
    backoff: { initialMs: 100, maxMs: 400 },
    queueCap: 16,
  });
  cleanups.push(() => l.close());
  return l;
}

describe('kiss-serial to a KISS TNC emulator over a pty', () => {
  for (const [label, callsign] of [['raw (pad-count byte)', undefined], ['AX.25 UI with callsign', 'N0CALL-7']] as const) {
    it(`carries frames of every size from 0 to the MTU, ${label}`, async () => {
      const a = await tnc('ka');
      const b = await tnc('kb');
      const la = link(a.pty.host, 'a', callsign);
      const lb = link(b.pty.host, 'b', callsign);
      await la.open();
      await lb.open();
      expect(la.state).toBe('up');
      // The CSMA parameters from config reached the TNC on open.
      await until(() => a.emulator.modem.kissParams.fullduplex !== undefined, 'KISS parameters at the TNC');
      expect(a.emulator.modem.kissParams).toEqual({ txdelay: 25, p: 127, slottime: 5, txtail: 2, fullduplex: 1 });

      const got = collect(lb);
      const sizes = [0, 1, 2, 13, 14, 15, 16, 100, 255, 256];
      const sent = sizes.map((n, i) => frameOfSize(n, i));
      for (const f of sent) {
        la.send(f);
        await until(() => got.length === sent.indexOf(f) + 1, `frame of ${f.length} bytes at b`);
      }
      expect(got.map((f) => hex(f.data))).toEqual(sent.map(hex));
      expect(la.counters.framesOut).toBe(sizes.length);
      expect(lb.counters.framesIn).toBe(sizes.length);
      expect(() => la.send(new Uint8Array(257))).toThrow(/exceeds the MTU of 256/);
    });
  }

  it('comes back by itself after the device disappears, and loses no queued frame within the cap', async () => {
    const a = await tnc('ra');
    const b = await tnc('rb');
    const la = link(a.pty.host, 'a');
    const lb = link(b.pty.host, 'b');
    const states: string[] = [];
    la.on('state', (s) => states.push(s));
    await la.open();
    await lb.open();
    const got = collect(lb);
    la.send(frameOfSize(20, 1));
    await until(() => got.length === 1, 'the first frame');

    // Unplug: kill socat (both pty ends vanish) and the emulator with it.
    a.pty.close();
    await a.emulator.close();
    await waitForState(la, 'reconnecting', 20_000);
    const queued = Array.from({ length: 10 }, (_, i) => frameOfSize(30 + i, i));
    for (const f of queued) la.send(f);
    expect(la.counters.framesOut).toBe(1);

    // Plug back in: the same device path comes back, with a TNC behind it.
    const pty = await openPtyPair('ra2');
    // socat makes new paths; point the same link path at the new pty by re-linking it.
    const { symlinkSync, rmSync } = await import('node:fs');
    rmSync(a.pty.host, { force: true });
    symlinkSync((await import('node:fs')).realpathSync(pty.host), a.pty.host);
    const emulator = await startModemEmulator({ serial: pty.modem, mode: 'kiss-tnc', medium, timeScale: 50 });
    cleanups.push(() => emulator.close(), () => pty.close());

    await waitForState(la, 'up', 15_000);
    await until(() => got.length === 11, 'the 10 frames queued while unplugged', 15_000);
    expect(got.slice(1).map((f) => hex(f.data))).toEqual(queued.map(hex));
    expect(la.counters.reconnects).toBe(1);
    // Each state change was reported once, not once per retry.
    expect(states).toEqual(['opening', 'up', 'reconnecting', 'up']);
  });

  it('with no CSMA parameters configured sends none (the TNC keeps its own), one when one is', async () => {
    const a = await tnc('na');
    const bare = kissSerialLink({ name: 'bare', path: a.pty.host, backoff: { initialMs: 100, maxMs: 400 } });
    cleanups.push(() => bare.close());
    await bare.open();
    const got = collect(bare);
    const b = await tnc('nb');
    const other = link(b.pty.host, 'other');
    await other.open();
    other.send(frameOfSize(20, 1));
    await until(() => got.length === 1, 'a frame through the TNC with no parameters set');
    expect(a.emulator.modem.kissParams).toEqual({});
    await bare.close();
    const c = await tnc('nc');
    const one = kissSerialLink({ name: 'one', path: c.pty.host, csma: { txTailMs: 50 }, backoff: { initialMs: 100, maxMs: 400 } });
    cleanups.push(() => one.close());
    await one.open();
    await until(() => c.emulator.modem.kissParams.txtail !== undefined, 'TXTAIL at the TNC');
    expect(c.emulator.modem.kissParams).toEqual({ txtail: 5 });
    // Its TNCs go now, not at the end of the file: the other tests should not share the load.
    await one.close();
    await other.close();
    for (const t of [a, b, c]) {
      await t.emulator.close();
      t.pty.close();
    }
  });

  it('keeps at most the queue cap while down, dropping the oldest and counting them', async () => {
    const l = link('/dev/nonexistent-meshgw-tnc', 'missing');
    await l.open(); // a device missing at start is not fatal
    expect(l.state).toBe('reconnecting');
    for (let i = 0; i < 20; i++) l.send(frameOfSize(20, i));
    expect(l.counters.drops['queue-full']).toBe(4);
    await l.close();
    expect(l.state).toBe('closed');
  });
});
