/** Fuzz targets at the edges: modem commands, the emulator's host side, the config file, the app API, Messi. */
import type { FuzzTarget } from '../../harness.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const edgeTargets: FuzzTarget<any>[] = [];
