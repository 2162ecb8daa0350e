/**
 * A minimal host for tests: opens a serial device through the real serialport binding, sends
 * LoRa modem messages and waits for decoded replies.
 */
import { SerialPort } from 'serialport';
import { KissDecoder } from '../../firmware-protocol/kiss.js';
import { decodeLoraFrame, encodeLoraMessage, type LoraMessage, type LoraMessageOf } from '../../firmware-protocol/lora-modem.js';

export class TestHost {
  readonly received: LoraMessage[] = [];
  private readonly decoder = new KissDecoder();
  private waiters: Array<() => void> = [];

  private constructor(private readonly port: SerialPort) {
    port.on('data', (b: Buffer) => {
      for (const e of this.decoder.push(new Uint8Array(b))) {
        if ('error' in e) continue;
        const r = decodeLoraFrame(e.frame);
        if ('message' in r) this.received.push(r.message);
      }
      for (const w of this.waiters) w();
    });
  }

  static async open(path: string): Promise<TestHost> {
    const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return new TestHost(port);
  }

  send(msg: LoraMessage): void {
    this.port.write(Buffer.from(encodeLoraMessage(msg)));
  }

  /** Writes bytes as they are (several frames at once, shared FENDs). */
  write(bytes: Uint8Array): void {
    this.port.write(Buffer.from(bytes));
  }

  /** Waits for the first not-yet-taken message that matches, and removes it from `received`. */
  async next<T extends LoraMessage['command']>(
    command: T,
    timeoutMs = 3_000,
  ): Promise<LoraMessageOf<T>> {
    const take = (): LoraMessageOf<T> | undefined => {
      const i = this.received.findIndex((m) => m.command === command);
      if (i < 0) return undefined;
      return this.received.splice(i, 1)[0] as LoraMessageOf<T>;
    };
    const found = take();
    if (found) return found;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`no '${command}' from the modem within ${timeoutMs} ms; got ${JSON.stringify(this.received.map((m) => m.command))}`));
      }, timeoutMs);
      const check = (): void => {
        const m = take();
        if (!m) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(m);
      };
      this.waiters.push(check);
    });
  }

  /** Sends a setting and returns the value the modem echoes. */
  async set<T extends 'frequency' | 'bandwidth' | 'txpower' | 'sf' | 'cr' | 'radio-state'>(command: T, value: number): Promise<number> {
    this.send({ command, value } as LoraMessage);
    const reply = await this.next(command);
    return (reply as { value: number }).value;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.port.isOpen ? this.port.close(() => resolve()) : resolve()));
  }
}
