/**
 * The common part of every driver over a byte stream (serial device or TCP): connect, an
 * optional handshake, framing, writing queued frames, and reconnecting with backoff when the
 * device disappears — without touching anything else in the gateway.
 *
 * States: 'opening' on the first attempt; 'up' once the handshake is done; 'reconnecting' after
 * a failure or a lost device (the reason is logged when it changes, not once per retry);
 * 'closed' after close(). Frames sent meanwhile wait in the bounded queue of BaseLink.
 */
import type { AirtimeModel } from '../src/link/airtime/model.js';
import { Backoff, type BackoffOptions } from '../src/link/backoff.js';
import type { ByteStream, StreamOpener } from '../src/link/byte-stream.js';
import { BaseLink, type QueuedFrame } from '../src/link/link.js';

export interface StreamLinkOptions {
  name: string;
  kind: string;
  mtu: number;
  airtime: AirtimeModel;
  bitRate?: number;
  opener: StreamOpener;
  /** Frames kept while the device is away; beyond it the oldest are dropped. Default 64. */
  queueCap?: number;
  backoff?: BackoffOptions;
  log?: (line: string) => void;
}

export abstract class StreamLink extends BaseLink {
  protected stream: ByteStream | undefined;
  private readonly opener: StreamOpener;
  private readonly backoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastFailure: string | undefined;
  private everUp = false;
  private waitingForDrain = false;

  constructor(options: StreamLinkOptions) {
    super(options.name, options.kind, options.mtu, options.airtime, options.bitRate, options.queueCap ?? 64, options.log);
    this.opener = options.opener;
    this.backoff = new Backoff(options.backoff);
  }

  /** Bytes for one frame on the wire. */
  protected abstract encodeFrame(frame: QueuedFrame): Uint8Array;
  /** Bytes from the device. */
  protected abstract onBytes(bytes: Uint8Array): void;
  /** Runs after connecting and before 'up' (modem configuration); throw to fail the attempt. */
  protected async handshake(_stream: ByteStream): Promise<void> {}
  /** Whether a frame may be written now (flow control); the base only needs a live stream. */
  protected canWrite(): boolean {
    return true;
  }
  /** Resets per-connection decoder and flow-control state. */
  protected abstract resetConnection(): void;

  /** Starts connecting; resolves after the first attempt, whether it succeeded or not. */
  async open(): Promise<void> {
    if (this.isClosed()) throw new Error(`${this.name}: link is closed`);
    this.setState('opening');
    await this.attempt();
  }

  async close(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    this.setState('closed');
    if (stream) {
      await this.beforeClose(stream);
      await stream.close();
    }
  }

  protected isClosed(): boolean {
    return this.state === 'closed';
  }

  /** A last word to the device before closing (LoRa: LEAVE). */
  protected async beforeClose(_stream: ByteStream): Promise<void> {}

  protected pump(): void {
    const stream = this.stream;
    if (!stream || this.state !== 'up' || this.waitingForDrain) return;
    while (this.queue.length > 0 && this.canWrite()) {
      const frame = this.queue.shift()!;
      const ok = stream.write(this.encodeFrame(frame));
      this.sent(frame.data.length);
      this.afterWrite(frame);
      if (!ok) {
        this.waitingForDrain = true;
        return;
      }
    }
  }

  /** Called after each frame is written (LoRa: start waiting for READY). */
  protected afterWrite(_frame: QueuedFrame): void {}

  private async attempt(): Promise<void> {
    this.retryTimer = undefined;
    let stream: ByteStream | undefined;
    try {
      stream = await this.opener();
      if (this.isClosed()) {
        await stream.close();
        return;
      }
      this.resetConnection();
      this.stream = stream;
      let lost: string | undefined;
      stream.onData((bytes) => {
        if (this.stream === stream) this.onBytes(bytes);
      });
      stream.onDrain(() => {
        this.waitingForDrain = false;
        this.pump();
      });
      stream.onClose((reason) => {
        lost = reason;
        if (this.stream === stream) this.lost(reason);
      });
      await this.handshake(stream);
      if (lost !== undefined) throw new Error(lost);
      if (this.isClosed()) return;
      if (this.everUp) this.counters.reconnects++;
      this.everUp = true;
      this.lastFailure = undefined;
      this.backoff.reset();
      this.setState('up');
      this.pump();
    } catch (err) {
      if (this.isClosed()) return;
      const reason = err instanceof Error ? err.message : String(err);
      if (stream) {
        if (this.stream === stream) this.stream = undefined;
        await stream.close().catch(() => undefined);
      }
      this.retry(reason);
    }
  }

  /** Drops the connection and opens it again, with backoff (a device that lost its state). */
  protected restart(reason: string): void {
    const stream = this.stream;
    if (!stream || this.isClosed()) return;
    this.stream = undefined;
    this.waitingForDrain = false;
    void stream.close().catch(() => undefined);
    this.retry(reason);
  }

  private lost(reason: string): void {
    this.stream = undefined;
    this.waitingForDrain = false;
    if (this.isClosed()) return;
    this.retry(reason);
  }

  private retry(reason: string): void {
    if (this.isClosed() || this.retryTimer) return;
    if (reason !== this.lastFailure) {
      // The reason is news: say it. Repeats of the same failure stay quiet.
      if (this.state === 'reconnecting') this.log(`${this.name}: still reconnecting (${reason})`);
      this.lastFailure = reason;
    }
    this.setState('reconnecting', reason);
    this.retryTimer = setTimeout(() => void this.attempt(), this.backoff.next());
  }
}
