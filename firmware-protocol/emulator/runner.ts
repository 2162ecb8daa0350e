/**
 * Runs an EmulatedModem on a real serial device (one end of a socat pty pair) or on stdio, with
 * its radio on a UdpMedium. This file is the emulator's only IO: the serial port, the medium
 * socket and one timer. Radio time runs `timeScale` times faster than the wall clock.
 */
import { performance } from 'node:perf_hooks';
import { SerialPort } from 'serialport';
import { encodeLoraMessage, RESET_NOTICE } from '../lora-modem.js';
import { EmulatedModem, type EmulatedModemOptions } from './modem.js';
import { DEFAULT_MEDIUM, UdpMedium } from './medium.js';

export interface ModemEmulatorConfig extends EmulatedModemOptions {
  /** A serial device path, or '-' for stdin/stdout. */
  serial: string;
  medium?: { host: string; port: number };
  /** Radio time per wall-clock time; 1 is real time. */
  timeScale?: number;
  /** Send the boot notice (RESET F8) on start, as ESP32 and nRF52 RNodes do when they boot. Default false. */
  bootNotice?: boolean;
  log?: (line: string) => void;
}

interface ByteLink {
  write(bytes: Uint8Array): void;
  onData(handler: (bytes: Uint8Array) => void): void;
  onClose(handler: (reason: string) => void): void;
  close(): Promise<void>;
}

export class RunningModemEmulator {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly modem: EmulatedModem,
    private readonly link: ByteLink,
    readonly medium: UdpMedium,
    private readonly timeScale: number,
  ) {}

  /** Radio time in ms: the wall-clock epoch × this emulator's time scale (the medium converts). */
  now(): number {
    return (performance.timeOrigin + performance.now()) * this.timeScale;
  }

  /** Writes what the modem produced and arms the timer for its next deadline. */
  flush(): void {
    if (this.closed) return;
    for (const bytes of this.modem.takeHostOutput()) this.link.write(bytes);
    for (const frame of this.modem.takeAirOutput()) this.medium.transmit(frame);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    const deadline = this.modem.nextDeadline(now);
    if (deadline === undefined) return;
    const wallMs = Math.max(0, (deadline - now) / this.timeScale);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.modem.poll(this.now());
      this.flush();
    }, Math.ceil(wallMs));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.all([this.link.close(), this.medium.close()]);
  }
}

function stdioLink(): ByteLink {
  return {
    write: (bytes) => void process.stdout.write(bytes),
    onData: (handler) => process.stdin.on('data', (b: Buffer) => handler(new Uint8Array(b))),
    onClose: (handler) => process.stdin.on('end', () => handler('stdin closed')),
    close: async () => {
      process.stdin.pause();
    },
  };
}

async function serialLink(path: string): Promise<ByteLink> {
  const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
  await new Promise<void>((resolve, reject) =>
    port.open((err) => (err ? reject(new Error(`cannot open serial device ${path}: ${err.message}`)) : resolve())),
  );
  port.on('error', () => undefined);
  return {
    write: (bytes) => void port.write(Buffer.from(bytes)),
    onData: (handler) => port.on('data', (b: Buffer) => handler(new Uint8Array(b))),
    onClose: (handler) => port.on('close', () => handler(`serial device ${path} closed`)),
    close: () =>
      new Promise<void>((resolve) => {
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
  };
}

/** Starts an emulator; resolves once the serial device is open and the medium joined. */
export async function startModemEmulator(config: ModemEmulatorConfig): Promise<RunningModemEmulator> {
  const timeScale = config.timeScale ?? 1;
  if (!(timeScale > 0 && Number.isFinite(timeScale))) {
    throw new RangeError(`time scale must be a positive number, got ${timeScale}`);
  }
  const modem = new EmulatedModem(config);
  const link = config.serial === '-' ? stdioLink() : await serialLink(config.serial);
  let running: RunningModemEmulator | undefined;
  let medium: UdpMedium;
  try {
    let warned = false;
    medium = await UdpMedium.join(
      config.medium ?? DEFAULT_MEDIUM,
      (frame) => {
        if (!running) return;
        modem.fromAir(frame, running.now());
        running.flush();
      },
      {
        timeScale,
        onOldFormat: () => {
          if (warned) return;
          warned = true;
          config.log?.('modem emulator: ignoring transmissions from an emulator of an older meshgw (medium format MGE2); run the same version on every emulator of a medium');
        },
      },
    );
  } catch (err) {
    await link.close();
    throw err;
  }
  running = new RunningModemEmulator(modem, link, medium, timeScale);
  const r = running;
  if (config.bootNotice) link.write(encodeLoraMessage({ command: 'reset', value: RESET_NOTICE }));
  link.onData((bytes) => {
    modem.fromHost(bytes, r.now());
    r.flush();
  });
  link.onClose((reason) => {
    config.log?.(`modem emulator: ${reason}`);
    void r.close();
  });
  config.log?.(
    `modem emulator on ${config.serial === '-' ? 'stdio' : config.serial}, medium ${medium.host}:${medium.basePort} (slot port ${medium.port}), time scale ${timeScale}`,
  );
  return r;
}
