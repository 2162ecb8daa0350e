/**
 * Byte-stream transports under the stream drivers: a serial device (through the real
 * `serialport` binding) or a TCP connection. Each open resolves once connected, or rejects with
 * a message that says what failed; 'close' fires once, whether the device vanished, the peer
 * hung up or an error ended it.
 */
import { connect, type Socket } from 'node:net';
import { SerialPort } from 'serialport';

export interface ByteStream {
  /** Writes bytes; returns false when the transport's buffer is full (wait for 'drain'). */
  write(bytes: Uint8Array): boolean;
  onData(handler: (bytes: Uint8Array) => void): void;
  onDrain(handler: () => void): void;
  onClose(handler: (reason: string) => void): void;
  close(): Promise<void>;
}

export type StreamOpener = () => Promise<ByteStream>;

/** 'close' handlers, called once for the first reason; a close we asked for calls none. */
class CloseOnce {
  private done = false;
  private readonly handlers: Array<(reason: string) => void> = [];

  add(handler: (reason: string) => void): void {
    this.handlers.push(handler);
  }

  fire(reason: string): void {
    if (this.done) return;
    this.done = true;
    for (const h of this.handlers) h(reason);
  }

  silence(): void {
    this.done = true;
  }
}

export function serialOpener(path: string, baudRate = 115_200): StreamOpener {
  return async () => {
    const port = new SerialPort({ path, baudRate, autoOpen: false });
    await new Promise<void>((resolve, reject) =>
      port.open((err) => (err ? reject(new Error(`cannot open ${path}: ${err.message}`)) : resolve())),
    );
    const closing = new CloseOnce();
    const fire = (reason: string): void => closing.fire(reason);
    port.on('close', (err: Error | null) => fire(err ? `${path} closed: ${err.message}` : `${path} closed`));
    port.on('error', (err: Error) => fire(`${path}: ${err.message}`));
    return {
      write: (bytes) => port.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
      onData: (h) => void port.on('data', (b: Buffer) => h(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))),
      onDrain: (h) => void port.on('drain', h),
      onClose: (h) => closing.add(h),
      close: () =>
        new Promise<void>((resolve) => {
          closing.silence();
          if (!port.isOpen) return resolve();
          port.close(() => resolve());
        }),
    };
  };
}

export function tcpOpener(host: string, port: number, connectTimeoutMs = 5_000): StreamOpener {
  return () =>
    new Promise<ByteStream>((resolve, reject) => {
      const socket: Socket = connect({ host, port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`cannot connect to ${host}:${port}: no answer within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to ${host}:${port}: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        const closing = new CloseOnce();
        const fire = (reason: string): void => closing.fire(reason);
        socket.on('error', (err) => fire(`${host}:${port}: ${err.message}`));
        socket.on('close', () => fire(`${host}:${port} closed the connection`));
        resolve({
          write: (bytes) => socket.write(bytes),
          onData: (h) => void socket.on('data', (b: Buffer) => h(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))),
          onDrain: (h) => void socket.on('drain', h),
          onClose: (h) => closing.add(h),
          close: () =>
            new Promise<void>((res) => {
              closing.silence();
              if (socket.destroyed) return res();
              socket.end(() => res());
              socket.destroy();
              res();
            }),
        });
      });
    });
}
