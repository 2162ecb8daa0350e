/**
 * The Strokkur Receiver fed chunks from three sources, with time advancing: real chunks of four
 * small messages, mutated. Anything delivered must be one of those messages (a forged one cannot
 * match its SHA-256 digest), each (source, message) once per run; states and bytes within caps.
 */
import { Receiver } from '../../../../src/strokkur/receive.js';
import { bytesEqual, invariant, type FuzzTarget } from '../../harness.js';
import { strokkurChunks, strokkurMessages } from './codecs.js';

const MAX_STATES = 8;
const MAX_BYTES = 64 * 1024;
const MESSAGES = strokkurMessages();

interface State {
  rx: Receiver;
  now: number;
  delivered: Set<string>;
}

export const strokkurReceiverTarget: FuzzTarget<State> = {
  name: 'strokkur-receiver',
  maxLength: 1024,
  corpus: strokkurChunks,
  resetEvery: 2000,
  setup: () => ({ rx: new Receiver({ maxStates: MAX_STATES, maxBufferedBytes: MAX_BYTES, staleAfterMs: 5_000 }), now: 0, delivered: new Set() }),
  one(input, s, rng) {
    s.now += rng.int(200);
    const source = `src${rng.int(3)}`;
    for (const e of s.rx.push(source, input, s.now)) {
      if ('error' in e) continue;
      const i = MESSAGES.findIndex((m) => bytesEqual(m, e.message.bytes));
      invariant(i >= 0, `delivered a ${e.message.bytes.length}-byte message that was never sent`);
      invariant(e.message.source === source, 'delivered under another source');
      const key = `${source}/${i}`;
      invariant(!s.delivered.has(key), `message ${i} from ${source} delivered twice`);
      s.delivered.add(key);
    }
    // The receiver counts its own failures instead of throwing them: any is a defect.
    if (s.rx.counters.internalErrors > 0) throw s.rx.lastInternalError ?? new Error('the receiver failed on a chunk');
    invariant(s.rx.states <= MAX_STATES, `${s.rx.states} states, cap ${MAX_STATES}`);
    invariant(s.rx.bufferedBytes >= 0 && s.rx.bufferedBytes <= MAX_BYTES, `${s.rx.bufferedBytes} bytes buffered, cap ${MAX_BYTES}`);
  },
  check(s) {
    invariant(s.rx.states <= MAX_STATES && s.rx.bufferedBytes <= MAX_BYTES, 'receiver over its caps');
    const c = s.rx.counters;
    invariant(c.messages + c.malformed + c.duplicates + c.rejected <= c.chunks, 'counters add up to more than the chunks pushed');
  },
};
