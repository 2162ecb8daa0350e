/** Fuzz targets at the edges: modem commands, the emulator's host and medium sides, the config file, the app API, Messi. */
import type { FuzzTarget } from '../../harness.js';
import { loraModemTarget } from './lora-modem.js';
import { emulatorHostTarget } from './emulator-host.js';
import { emulatorMediumTarget } from './emulator-medium.js';
import { configFileTarget } from './config-file.js';
import { apiMessageTarget, messiCodecTarget, messiFramingTarget } from './messi.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const edgeTargets: FuzzTarget<any>[] = [loraModemTarget, emulatorHostTarget, emulatorMediumTarget, configFileTarget, apiMessageTarget, messiFramingTarget, messiCodecTarget];
