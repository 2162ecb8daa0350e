/**
 * The modem emulator's host side (firmware-protocol/emulator/modem.ts): arbitrary bytes as a
 * host would write them to the serial line, in random chunks, with radio time moving on and the
 * emulator's own transmissions heard back by a second emulator. It never throws; everything it
 * writes to the host is one well-formed KISS frame holding a LoRa modem message; its output per
 * input and its queues stay bounded.
 */
import { EmulatedModem } from '../../../../firmware-protocol/emulator/modem.js';
import { KissDecoder } from '../../../../firmware-protocol/kiss.js';
import { decodeLoraFrame, encodeLoraMessage, type LoraMessage } from '../../../../firmware-protocol/lora-modem.js';
import { Prng, invariant, type FuzzTarget } from '../../harness.js';
import { chunks } from '../framing.js';

const TX_QUEUE = 8;
const MAX_RECEPTIONS = 64;

interface State {
  modem: EmulatedModem;
  /** A second emulator on the same channel: the first one's transmissions reach it. */
  peer: EmulatedModem;
  now: number;
}

const configure: LoraMessage[] = [
  { command: 'frequency', value: 869_525_000 },
  { command: 'bandwidth', value: 250_000 },
  { command: 'txpower', value: 14 },
  { command: 'sf', value: 7 },
  { command: 'cr', value: 5 },
  { command: 'radio-state', value: 1 },
];

function newModem(seed: number): EmulatedModem {
  const prng = new Prng(seed);
  return new EmulatedModem({ txQueueFrames: TX_QUEUE, random: () => prng.int(1 << 30) / (1 << 30) });
}

/** Every write to the host is one KISS frame whose command decodes. */
function checkHostOutput(modem: EmulatedModem, limit: number): void {
  const out = modem.takeHostOutput();
  invariant(out.length <= limit, `${out.length} writes to the host for one input (limit ${limit})`);
  for (const bytes of out) {
    const events = new KissDecoder({ maxFrame: 600 }).push(bytes);
    const first = events[0];
    invariant(events.length === 1 && first !== undefined && 'frame' in first, 'a write to the host is not exactly one KISS frame');
    const r = decodeLoraFrame(first.frame);
    invariant('message' in r, `the emulator wrote an undecodable command: ${JSON.stringify('error' in r ? r.error : {})}`);
    if (r.message.command === 'data') invariant(r.message.data.length > 0 && r.message.data.length <= 508, `received DATA of ${r.message.data.length} bytes`);
  }
}

export const emulatorHostTarget: FuzzTarget<State> = {
  name: 'emulator-host',
  maxLength: 2048,
  corpus: () => {
    const setup = configure.map((m) => encodeLoraMessage(m));
    const join = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(parts.flatMap((p) => [...p]));
    const data = (n: number): Uint8Array => encodeLoraMessage({ command: 'data', data: new Uint8Array(n).map((_, i) => i & 0xff) });
    return [
      join(...setup),
      join(...setup, data(1)),
      join(...setup, data(254), data(255)),
      join(...setup, data(508)),
      join(...setup, data(509)),
      join(...setup, ...Array.from({ length: 10 }, () => data(20))),
      encodeLoraMessage({ command: 'detect', value: 0x73 }),
      join(...[{ command: 'query', target: 'fw-version' }, { command: 'query', target: 'stat-chtm' }, { command: 'query', target: 'stat-phyprm' }, { command: 'query', target: 'stat-rx' }, { command: 'ready', value: 0 }, { command: 'random', value: 0 }].map((m) => encodeLoraMessage(m as LoraMessage))),
      join(encodeLoraMessage({ command: 'st-alock', percent: 1 }), encodeLoraMessage({ command: 'lt-alock', percent: 100 }), encodeLoraMessage({ command: 'promisc', value: 1 })),
      join(encodeLoraMessage({ command: 'radio-state', value: 0 }), data(3)),
    ];
  },
  setup: () => {
    const modem = newModem(11);
    const peer = newModem(12);
    for (const m of configure) {
      modem.fromHost(encodeLoraMessage(m), 0);
      peer.fromHost(encodeLoraMessage(m), 0);
    }
    modem.takeHostOutput();
    peer.takeHostOutput();
    return { modem, peer, now: 0 };
  },
  resetEvery: 200,
  one(input, state, rng) {
    const { modem, peer } = state;
    // At most two answers per KISS frame in (a frame needs two FENDs, or one between frames;
    // RADIO_STATE on is answered and followed by STAT_PHYPRM), plus READY and STAT_CSMA per
    // finished transmission.
    const limit = 2 * (Math.floor(input.length / 2) + 1) + 3 * (TX_QUEUE + 1);
    const toAir = (): void => {
      for (const f of modem.takeAirOutput()) {
        invariant(f.data.length >= 1 && f.data.length <= 255, `a packet of ${f.data.length} bytes on air`);
        invariant(Number.isFinite(f.airtimeMs) && f.airtimeMs > 0, `airtime ${f.airtimeMs} ms`);
        peer.fromAir(f, state.now);
      }
    };
    for (const piece of chunks(input, rng)) {
      modem.fromHost(piece, state.now);
      checkHostOutput(modem, limit);
      toAir();
      state.now += rng.int(4) === 0 ? rng.int(5_000) : rng.int(50);
      const deadline = modem.nextDeadline(state.now);
      invariant(deadline === undefined || Number.isFinite(deadline), `next deadline ${deadline}`);
      // Run the clock to the next deadline now and then, so queued frames go out and end.
      if (deadline !== undefined && rng.int(2) === 0) state.now = Math.max(state.now, deadline);
      modem.poll(state.now);
      toAir();
      peer.poll(state.now);
      checkHostOutput(modem, limit);
      // The peer passes up what it heard: STAT_RSSI, STAT_SNR and DATA per frame, and the
      // modem's queue (flushed in one channel access at low rates) plus the frame on air at most.
      checkHostOutput(peer, 3 * (TX_QUEUE + 1));
      peer.takeAirOutput();
    }
  },
  check(state) {
    for (const m of [state.modem, state.peer]) {
      // txPackets: the packets of the frame on air still to go (508 bytes make three).
      const inner = m as unknown as { txQueue: unknown[]; receptions: unknown[]; txPackets: unknown[]; rxSplit?: { data: Uint8Array }; hostOut: unknown[]; airOut: unknown[] };
      invariant(inner.txQueue.length <= TX_QUEUE, `tx queue holds ${inner.txQueue.length} frames (cap ${TX_QUEUE})`);
      invariant(inner.receptions.length <= MAX_RECEPTIONS, `${inner.receptions.length} receptions held (cap ${MAX_RECEPTIONS})`);
      invariant(inner.txPackets.length <= 2, `${inner.txPackets.length} packets of a frame still to go`);
      invariant((inner.rxSplit?.data.length ?? 0) <= 254, `a held split half of ${inner.rxSplit?.data.length} bytes`);
      invariant(inner.hostOut.length === 0 && inner.airOut.length === 0, 'output left untaken after an input');
    }
  },
};
