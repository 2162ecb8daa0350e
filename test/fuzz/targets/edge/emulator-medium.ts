/**
 * The modem emulator's medium side (firmware-protocol/emulator/medium.ts and the modem's
 * `fromAir`): any datagram on the medium's UDP ports, decoded at a receiver's time scale and, when
 * it is one, handed to an emulated RNode with its radio on. Decoding never throws; a decoded frame
 * re-encodes to the same transmission at the same scale; every frame passed up to the host is 1 to 508
 * bytes; the modem's receptions and its held split half stay within their caps.
 */
import { decodeAirFrame, encodeAirFrame } from '../../../../firmware-protocol/emulator/medium.js';
import { EmulatedModem } from '../../../../firmware-protocol/emulator/modem.js';
import { KissDecoder } from '../../../../firmware-protocol/kiss.js';
import { decodeLoraFrame, encodeLoraMessage, type LoraMessage } from '../../../../firmware-protocol/lora-modem.js';
import { Prng, invariant, type FuzzTarget } from '../../harness.js';

const CHANNEL = { frequency: 869_525_000, bandwidth: 125_000, sf: 7, cr: 5 };
const SCALES = [1, 20, 0.5];

interface State {
  modem: EmulatedModem;
  /** The receiver's radio time, ms (its scale × a wall clock that only moves forward). */
  wallMs: number;
}

function newModem(seed: number): EmulatedModem {
  const prng = new Prng(seed);
  const modem = new EmulatedModem({ random: () => prng.int(1 << 30) / (1 << 30) });
  const configure: LoraMessage[] = [
    { command: 'frequency', value: CHANNEL.frequency },
    { command: 'bandwidth', value: CHANNEL.bandwidth },
    { command: 'txpower', value: 14 },
    { command: 'sf', value: CHANNEL.sf },
    { command: 'cr', value: CHANNEL.cr },
    { command: 'radio-state', value: 1 },
  ];
  for (const m of configure) modem.fromHost(encodeLoraMessage(m), 0);
  modem.takeHostOutput();
  return modem;
}

function checkHostOutput(modem: EmulatedModem): void {
  const decoder = new KissDecoder({ maxFrame: 600 });
  for (const bytes of modem.takeHostOutput()) {
    for (const e of decoder.push(bytes)) {
      invariant('frame' in e, 'the emulator wrote a broken KISS frame');
      const r = decodeLoraFrame(e.frame);
      invariant('message' in r, 'the emulator wrote an undecodable command');
      if (r.message.command === 'data') invariant(r.message.data.length >= 1 && r.message.data.length <= 508, `passed up ${r.message.data.length} bytes`);
    }
  }
}

export const emulatorMediumTarget: FuzzTarget<State> = {
  name: 'emulator-medium',
  maxLength: 600,
  corpus: () => {
    const packet = (bytes: number[], start = 1.7e12, air = 30): Uint8Array =>
      encodeAirFrame({ ...CHANNEL, airtimeMs: air, start, data: Uint8Array.from(bytes) }, 1);
    return [
      packet([0x40, 1, 2, 3]),
      packet([0x51, ...new Array(254).fill(7)]),
      packet([0x51, 9, 9]),
      packet([0x51]),
      packet([0x20, 5], 1.7e12 + 100),
      encodeAirFrame({ ...CHANNEL, sf: 9, airtimeMs: 10, start: 0, data: Uint8Array.of(1) }, 20),
      Uint8Array.of(0x4d, 0x47, 0x45, 0x32, 0, 0, 0, 0),
    ];
  },
  setup: () => ({ modem: newModem(3), wallMs: 1.7e12 }),
  resetEvery: 500,
  one(input, state, rng) {
    const scale = SCALES[rng.int(SCALES.length)]!;
    const frame = decodeAirFrame(input, scale);
    if (frame === undefined || frame === 'old-format') return;
    invariant(Number.isFinite(frame.start) && Number.isFinite(frame.airtimeMs) && frame.airtimeMs >= 0, `decoded start ${frame.start}, airtime ${frame.airtimeMs}`);
    // Sent on at the same scale, it decodes to the same transmission (times to rounding).
    const back = decodeAirFrame(encodeAirFrame(frame, scale), scale);
    const close = (x: number, y: number): boolean => Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(x));
    invariant(
      back !== undefined && back !== 'old-format' && close(back.start, frame.start) && close(back.airtimeMs, frame.airtimeMs) &&
        back.frequency === frame.frequency && back.sf === frame.sf && Buffer.from(back.data).equals(Buffer.from(frame.data)),
      'a decoded frame does not re-encode to the same transmission',
    );
    // The receiver at scale 1, on its own clock: the frame arrives now or late, never early.
    state.wallMs += rng.int(200);
    const now = state.wallMs;
    const rx = decodeAirFrame(input, 1);
    if (rx === undefined || rx === 'old-format') return;
    const { modem } = state;
    modem.fromAir(rx, now);
    checkHostOutput(modem);
    const deadline = modem.nextDeadline(now);
    invariant(deadline === undefined || Number.isFinite(deadline), `next deadline ${deadline}`);
    // Run to the end of this reception (so what it passes up is checked now), and now and then
    // far beyond, so that every reception in flight ends.
    state.wallMs = Math.max(state.wallMs, Math.min(now, rx.start) + rx.airtimeMs) + (rng.int(4) === 0 ? 3_600_000 : 0);
    modem.poll(state.wallMs);
    checkHostOutput(modem);
    modem.takeAirOutput();
  },
  check(state) {
    const inner = state.modem as unknown as { receptions: unknown[]; rxSplit?: { data: Uint8Array } };
    invariant(inner.receptions.length <= 64, `${inner.receptions.length} receptions held`);
    invariant((inner.rxSplit?.data.length ?? 0) <= 254, `a held split half of ${inner.rxSplit?.data.length} bytes`);
  },
};
