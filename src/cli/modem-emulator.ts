/**
 * `meshgw modem-emulator --serial PATH [--medium HOST:PORT] [--loss RATE] [--time-scale X]`
 */
import type { Command } from 'commander';
import { startModemEmulator } from '../../firmware-protocol/emulator/runner.js';
import { DEFAULT_MEDIUM, parseMediumAddress } from '../../firmware-protocol/emulator/medium.js';
import { UsageError, parseNumberOption } from './usage-error.js';

interface Options {
  mode: string;
  serial?: string;
  medium: string;
  loss: string;
  timeScale: string;
  delay: string;
  bitRate?: string;
  rssi: string;
  snr: string;
  csma: boolean;
}

export function modemEmulatorOptions(cmd: Command): Command {
  return cmd
    .option('--mode <mode>', 'lora (the LoRa modem command set) or kiss-tnc (a plain KISS TNC)', 'lora')
    .option('--serial <path>', 'serial device the host talks to (one end of a pty pair), or - for stdio')
    .option('--medium <host:port>', 'simulated radio medium: base UDP port of a block of 32', `${DEFAULT_MEDIUM.host}:${DEFAULT_MEDIUM.port}`)
    .option('--loss <rate>', 'probability 0..1 that a received frame is lost', '0')
    .option('--time-scale <x>', 'run the radio X times faster than real time (emulators on one medium may differ)', '1')
    .option('--delay <ms>', 'propagation delay in ms of radio time', '0')
    .option('--bit-rate <bps>', 'fixed bit rate instead of the LoRa time-on-air formula')
    .option('--rssi <dbm>', 'RSSI reported for received frames', '-90')
    .option('--snr <db>', 'SNR reported for received frames', '8.5')
    .option('--no-csma', "send at once instead of RNode's carrier sense and contention window (lora mode)");
}

export async function runModemEmulatorCommand(opts: Options): Promise<void> {
  if (opts.serial === undefined) throw new UsageError("required option '--serial <path>' not specified");
  let medium;
  try {
    medium = parseMediumAddress(opts.medium);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (opts.mode !== 'lora' && opts.mode !== 'kiss-tnc') throw new UsageError(`--mode must be lora or kiss-tnc, got '${opts.mode}'`);
  const log = (line: string): void => void process.stderr.write(line + '\n');
  const emulator = await startModemEmulator({
    serial: opts.serial,
    mode: opts.mode,
    medium,
    loss: parseNumberOption('--loss', opts.loss, 0, 1),
    timeScale: parseNumberOption('--time-scale', opts.timeScale, 0.001, 1_000_000),
    delayMs: parseNumberOption('--delay', opts.delay, 0, 3_600_000),
    rssiDbm: Math.round(parseNumberOption('--rssi', opts.rssi, -157, 98)),
    snrDb: parseNumberOption('--snr', opts.snr, -32, 31.75),
    csma: opts.csma && opts.mode === 'lora',
    ...(opts.bitRate !== undefined ? { bitRate: parseNumberOption('--bit-rate', opts.bitRate, 1, 1e9) } : {}),
    log,
  });
  const stop = (): void => {
    void emulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
