/**
 * Every fuzz target, in the order `npm run fuzz` runs them. A new decoder or state machine that
 * takes bytes from outside gets a target here.
 */
import type { FuzzTarget } from '../harness.js';
import { kissTarget, slipTarget } from './framing.js';
import { edgeTargets } from './edge/index.js';
import { protocolTargets } from './protocol/index.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const targets: FuzzTarget<any>[] = [kissTarget, slipTarget, ...edgeTargets, ...protocolTargets];
