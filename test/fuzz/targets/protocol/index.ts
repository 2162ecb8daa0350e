/** Fuzz targets of the protocols: RFC 5444, mesh frames and the node, Strokkur, MSP. */
import type { FuzzTarget } from '../../harness.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const protocolTargets: FuzzTarget<any>[] = [];
