/**
 * The emulated modem's radio model in virtual time: airtime, locks, collisions, half duplex,
 * loss and queue limits. No sockets: frames from takeAirOutput are handed to fromAir directly.
 */
import { describe, expect, it } from 'vitest';
import { EmulatedModem, type EmulatedModemOptions } from '../firmware-protocol/emulator/modem.js';
import { KissDecoder } from '../firmware-protocol/kiss.js';
import { decodeLoraFrame, encodeLoraMessage, type LoraMessage } from '../firmware-protocol/lora-modem.js';
import { loraAirtime } from '../src/link/airtime/lora.js';

const PARAMS = { frequency: 869_525_000, bandwidth: 125_000, sf: 9, cr: 5, txpower: 14 };

function messages(modem: EmulatedModem): LoraMessage[] {
  const d = new KissDecoder();
  const out: LoraMessage[] = [];
  for (const bytes of modem.takeHostOutput()) {
    for (const e of d.push(bytes)) {
      if ('frame' in e) {
        const r = decodeLoraFrame(e.frame);
        if ('message' in r) out.push(r.message);
      }
    }
  }
  return out;
}

function send(modem: EmulatedModem, now: number, ...msgs: LoraMessage[]): void {
  for (const m of msgs) modem.fromHost(encodeLoraMessage(m), now);
}

function radio(options: EmulatedModemOptions = {}, params = PARAMS): EmulatedModem {
  const m = new EmulatedModem(options);
  send(
    m,
    0,
    { command: 'frequency', value: params.frequency },
    { command: 'bandwidth', value: params.bandwidth },
    { command: 'txpower', value: params.txpower },
    { command: 'sf', value: params.sf },
    { command: 'cr', value: params.cr },
    { command: 'radio-state', value: 1 },
  );
  messages(m);
  return m;
}

/** Moves every transmission of `from` to each of `to`, at time `now`. */
function air(now: number, from: EmulatedModem, ...to: EmulatedModem[]): number {
  const frames = from.takeAirOutput();
  for (const f of frames) for (const t of to) t.fromAir(f, now);
  return frames.length;
}

const payload = (n: number, fill = 0x55): Uint8Array => new Uint8Array(n).fill(fill);

describe('EmulatedModem radio model', () => {
  it('a frame takes its LoRa time-on-air and is received when it ends', () => {
    const a = radio();
    const b = radio({ rssiDbm: -101, snrDb: 2.5 });
    send(a, 0, { command: 'data', data: payload(51) });
    expect(air(0, a, b)).toBe(1);
    const t = loraAirtime({ sf: 9, bandwidth: 125_000, cr: 5 }, 51).airtimeMs; // 328.704 ms
    expect(b.nextDeadline(0)).toBeCloseTo(t, 9);
    b.poll(t - 0.001);
    expect(messages(b)).toEqual([]);
    b.poll(t);
    const got = messages(b);
    expect(got.map((m) => m.command)).toEqual(['stat-rssi', 'stat-snr', 'data']);
    expect(got[0]).toEqual({ command: 'stat-rssi', dbm: -101 });
    expect(got[1]).toEqual({ command: 'stat-snr', db: 2.5 });
    a.poll(t);
    expect(messages(a)).toEqual([{ command: 'ready', value: 1 }]);
  });

  it('two overlapping transmissions collide and neither is received', () => {
    const a = radio();
    const c = radio();
    const b = radio();
    send(a, 0, { command: 'data', data: payload(20) });
    air(0, a, b);
    send(c, 50, { command: 'data', data: payload(20, 1) });
    air(50, c, b);
    b.poll(10_000);
    expect(messages(b).filter((m) => m.command === 'data')).toEqual([]);
    expect(b.counters.collisions).toBe(2);
  });

  it('transmissions that do not overlap are both received', () => {
    const a = radio();
    const c = radio();
    const b = radio();
    send(a, 0, { command: 'data', data: payload(20) });
    air(0, a, b);
    send(c, 1000, { command: 'data', data: payload(20, 1) });
    air(1000, c, b);
    b.poll(10_000);
    expect(messages(b).filter((m) => m.command === 'data')).toHaveLength(2);
  });

  it('a radio that transmits while receiving loses the reception (half duplex)', () => {
    const a = radio();
    const b = radio();
    send(a, 0, { command: 'data', data: payload(30) });
    air(0, a, b);
    send(b, 10, { command: 'data', data: payload(5) });
    b.poll(10_000);
    expect(messages(b).filter((m) => m.command === 'data')).toEqual([]);
    expect(b.counters.lostHalfDuplex).toBe(1);
  });

  it('frames on another frequency, bandwidth or SF are not received', () => {
    const a = radio();
    const others = [
      radio({}, { ...PARAMS, frequency: 868_100_000 }),
      radio({}, { ...PARAMS, bandwidth: 250_000 }),
      radio({}, { ...PARAMS, sf: 10 }),
    ];
    send(a, 0, { command: 'data', data: payload(10) });
    air(0, a, ...others);
    for (const o of others) {
      o.poll(10_000);
      expect(messages(o)).toEqual([]);
      expect(o.counters.offChannel).toBe(1);
    }
  });

  it('loses frames at the configured rate', () => {
    let seed = 1;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const a = radio();
    const b = radio({ loss: 0.3, random });
    let now = 0;
    for (let i = 0; i < 400; i++) {
      send(a, now, { command: 'data', data: payload(10) });
      air(now, a, b);
      now += 1000;
      a.poll(now);
      b.poll(now);
    }
    const received = messages(b).filter((m) => m.command === 'data').length;
    expect(b.counters.lostToNoise + received).toBe(400);
    expect(received).toBeGreaterThan(230);
    expect(received).toBeLessThan(330);
  });

  it('holds frames while its short-window airtime lock is reached', () => {
    const a = radio();
    send(a, 0, { command: 'st-alock', percent: 5 }); // 750 ms per 15 s
    expect(messages(a)).toEqual([{ command: 'st-alock', percent: 5 }]);
    const t = a.airtimeMs(200); // SF9: about 1.4 s, over the lock on its own
    send(a, 0, { command: 'data', data: payload(200) }, { command: 'data', data: payload(200) });
    expect(a.takeAirOutput()).toHaveLength(1); // the first goes: nothing used yet
    a.poll(t);
    expect(a.takeAirOutput()).toHaveLength(0); // the second waits for the window
    let now = t;
    let sent = 0;
    while (sent === 0 && now < 30_000) {
      now = a.nextDeadline(now) ?? now + 1000;
      a.poll(now);
      sent = a.takeAirOutput().length;
    }
    expect(sent).toBe(1);
    expect(now).toBeGreaterThanOrEqual(15_000);
  });

  it('refuses DATA beyond its queue with ERROR queue-full, and when the radio is off', () => {
    const a = radio({ txQueueFrames: 2 });
    send(a, 0, ...Array.from({ length: 4 }, () => ({ command: 'data', data: payload(50) }) as LoraMessage));
    // One on the air, two queued, the fourth refused.
    expect(messages(a)).toEqual([{ command: 'error', value: 0x04 }]);
    expect(a.counters.queueFull).toBe(1);
    send(a, 0, { command: 'ready', value: 0 });
    expect(messages(a)).toEqual([{ command: 'ready', value: 0 }]);
    const off = new EmulatedModem();
    send(off, 0, { command: 'data', data: payload(5) });
    expect(messages(off)).toEqual([{ command: 'error', value: 0x02 }]);
  });

  it('counts garbage from the host and keeps working', () => {
    const a = radio();
    a.fromHost(Uint8Array.of(0xc0, 0x77, 0x01, 0xc0, 0xc0, 0x01, 0x01, 0xc0, 0xc0, 0x08, 0xdb, 0x01, 0xc0), 0);
    expect(a.counters.unknownCommands).toBe(1);
    expect(a.counters.decodeErrors).toBe(2); // FREQUENCY with 1 byte of 01, and a bad escape
    send(a, 0, { command: 'detect', value: 0x73 });
    expect(messages(a)).toEqual([{ command: 'detect', value: 0x46 }]);
  });
});
