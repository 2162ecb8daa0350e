/**
 * lora-serial over real socat pty pairs to LoRa modem emulators on a shared medium: the open
 * handshake, frames with RSSI/SNR, READY flow control, and refusals that name the step.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startModemEmulator } from '../../firmware-protocol/emulator/runner.js';
import { LoraSerialLink, type LoraRadioConfig } from '../../drivers/lora-serial.js';
import { openPtyPair } from './pty.js';
import { collect, frameOfSize, hex, until, waitForState } from './link-helpers.js';

const medium = { host: '127.0.0.1', port: 20_000 + Math.floor(Math.random() * 20_000) };
const RADIO: LoraRadioConfig = { frequency: 869_525_000, bandwidth: 125_000, sf: 7, cr: 5, txPower: 14 };
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function modem(name: string, withEmulator = true, readyAfterTx = true, timeScale = 20): Promise<string> {
  const pty = await openPtyPair(name);
  cleanups.push(() => pty.close());
  if (withEmulator) {
    const emulator = await startModemEmulator({ serial: pty.modem, medium, timeScale, rssiDbm: -103, snrDb: 4.25, readyAfterTx });
    cleanups.push(() => emulator.close());
  }
  return pty.host;
}

function link(path: string, name: string, radio: LoraRadioConfig = RADIO, extra: Partial<ConstructorParameters<typeof LoraSerialLink>[0]> = {}): LoraSerialLink {
  const l = new LoraSerialLink({ name, path, radio, backoff: { initialMs: 200, maxMs: 400 }, replyTimeoutMs: 500, detectTimeoutMs: 500, ...extra });
  cleanups.push(() => l.close());
  return l;
}

describe('lora-serial to the LoRa modem emulator over a pty', () => {
  it('detects, configures, reads back, turns the radio on, and carries frames with RSSI/SNR', async () => {
    const a = link(await modem('la'), 'a', RADIO, { shortAirtimeLockPercent: 50, longAirtimeLockPercent: 10 });
    const b = link(await modem('lb'), 'b');
    await a.open();
    await b.open();
    expect(a.state).toBe('up');
    expect(a.stats).toMatchObject({ firmware: '1.74', frequency: 869_525_000, bandwidth: 125_000, sf: 7, cr: 5, txpower: 14 });
    const got = collect(b);
    // 255 bytes and more go as two LoRa packets through the emulated RNodes and arrive whole.
    const frames = [1, 50, 200, 254, 255, 400, 507].map((n, i) => frameOfSize(n, i));
    for (const f of frames) a.send(f); // a burst: flow control lets one out per READY
    await until(() => got.length === frames.length, 'seven frames at b');
    expect(got.map((f) => hex(f.data))).toEqual(frames.map(hex));
    expect(got.every((f) => f.rssiDbm === -103 && f.snrDb === 4.25)).toBe(true);
    expect(a.stats.readyTimeouts).toBeUndefined(); // every frame was released by READY
    expect(a.mtu).toBe(507);
    expect(() => a.send(new Uint8Array(508))).toThrow(/MTU of 507/);
    // The modem's own report of its timing (STAT_PHYPRM, sent when the radio came on).
    expect(a.stats).toMatchObject({ preambleSymbols: 24, csmaSlotMs: 24, difsMs: 48 });
  });

  it('carries 508-byte frames when asked to, and across emulators at different time scales', async () => {
    const a = link(await modem('lm', true, true, 20), 'm', RADIO, { mtu: 508 });
    const b = link(await modem('ln5', true, true, 5), 'n5');
    await a.open();
    await b.open();
    const got = collect(b);
    // After a 508-byte frame comes one that is not split: the receiving RNode holds the 508's
    // header-only third packet as a first half, and a split frame with the same sequence nibble
    // (1 in 16) would lose its second half to it (test/emulator-modem.test.ts shows it).
    const frames = [508, 10, 300].map((n, i) => frameOfSize(n, i + 40));
    for (const f of frames) a.send(f);
    await until(() => got.length === frames.length, 'three frames at the emulator running at a quarter of the speed');
    expect(got.map((f) => hex(f.data))).toEqual(frames.map(hex));
    expect(() => new LoraSerialLink({ name: 'x', path: '/dev/null', radio: RADIO, mtu: 509 })).toThrow(/1 to 508 bytes/);
  });

  it('names the refused setting and keeps retrying', async () => {
    const reasons: string[] = [];
    const l = link(await modem('lr'), 'r', { ...RADIO, frequency: 100_000_000 });
    l.on('state', (_s, reason) => reason && reasons.push(reason));
    await l.open();
    expect(l.state).toBe('reconnecting');
    expect(reasons[0]).toBe('modem refused frequency: asked 100000000, modem has 0');
  });

  it('refuses firmware older than minFirmware, naming both versions', async () => {
    const reasons: string[] = [];
    const l = link(await modem('lf'), 'f', RADIO, { minFirmware: [9, 0] });
    l.on('state', (_s, reason) => reason && reasons.push(reason));
    await l.open();
    expect(l.state).toBe('reconnecting');
    expect(reasons[0]).toBe('modem firmware 1.74 is older than the required 9.0');
  });

  it('reports a missing modem and comes up when one answers', async () => {
    const pty = await openPtyPair('ln');
    cleanups.push(() => pty.close());
    const reasons: string[] = [];
    const l = link(pty.host, 'n');
    l.on('state', (_s, reason) => reason && reasons.push(reason));
    await l.open();
    expect(l.state).toBe('reconnecting');
    expect(reasons[0]).toBe('no modem detected (no answer to DETECT)');
    const emulator = await startModemEmulator({ serial: pty.modem, medium, timeScale: 20 });
    cleanups.push(() => emulator.close());
    await waitForState(l, 'up');
    expect(l.counters.reconnects).toBe(0); // it had never been up before
  });

  it('a device that answers DETECT unasked never completes the open sequence', async () => {
    const pty = await openPtyPair('ls');
    cleanups.push(() => pty.close());
    // KISS: FEND, CMD_DETECT (0x08), DETECT_RESPONSE (0x46), FEND — every 10 ms, whatever it is asked.
    const fd = openSync(pty.modem, 'r+');
    const spew = setInterval(() => writeSync(fd, Uint8Array.of(0xc0, 0x08, 0x46, 0xc0)), 10);
    cleanups.push(() => {
      clearInterval(spew);
      closeSync(fd);
    });
    const reasons: string[] = [];
    const l = link(pty.host, 's');
    l.on('state', (_s, reason) => reason && reasons.push(reason));
    await l.open();
    expect(l.state).toBe('reconnecting');
    expect(reasons[0]).toMatch(/^the device sent \d+ DETECT answer\(s\) unasked in 100 ms: not an RNode-compatible modem/);
  });

  it('a modem that reboots (its boot notice, RESET F8) is configured again', async () => {
    const pty = await openPtyPair('lt');
    cleanups.push(() => pty.close());
    const first = await startModemEmulator({ serial: pty.modem, medium, timeScale: 20 });
    const lines: string[] = [];
    const l = link(pty.host, 't', RADIO, { log: (line) => lines.push(line) });
    await l.open();
    expect(l.state).toBe('up');
    // The modem restarts: the same serial device, a fresh firmware with its radio off, saying so.
    await first.close();
    const second = await startModemEmulator({ serial: pty.modem, medium, timeScale: 20, bootNotice: true });
    cleanups.push(() => second.close());
    await until(() => l.counters.reconnects === 1 && l.state === 'up', 'the link configured again after the boot notice');
    expect(lines.some((x) => x.includes('the modem restarted (boot notice)'))).toBe(true);
    expect(l.stats).toMatchObject({ frequency: 869_525_000, sf: 7 });
  });

  it('asks for READY when the modem does not send it by itself (as RNode firmware)', async () => {
    const a = link(await modem('lq', true, false), 'q');
    const b = link(await modem('lr2'), 'r2');
    await a.open();
    await b.open();
    const got = collect(b);
    const frames = [10, 20, 30].map((n, i) => frameOfSize(n, i));
    for (const f of frames) a.send(f);
    await until(() => got.length === frames.length, 'three frames released by READY answers');
    expect(got.map((f) => hex(f.data))).toEqual(frames.map(hex));
    expect(a.stats.readyTimeouts).toBeUndefined();
  });
});
