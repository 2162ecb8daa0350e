/**
 * A pcapng writer: pure encoders that return one block each, and `PcapngFile`, a small file sink.
 *
 * pcapng rather than classic pcap because one capture holds several interfaces of different link
 * types (a KISS TNC, a UDP link and a LoRa modem side by side), each described by its own
 * Interface Description Block.
 *
 * Format: "PCAP Now Generic (pcapng) Capture File Format", draft-ietf-opsawg-pcapng (the
 * tcpdump.org / pcapng.com spec): §4.1 Section Header Block, §4.2 Interface Description Block,
 * §4.3 Enhanced Packet Block, §3.5 options. Every block is
 * `type u32 | total length u32 | body | total length u32`, padded to 32 bits; this writer is
 * little-endian (the byte-order magic 0x1A2B3C4D tells readers). Link types are from the
 * tcpdump.org list of LINKTYPE_ values.
 */
import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';

/** LINKTYPE_ values used by meshgw (tcpdump.org, "Link-layer header types"). */
export const LinkType = {
  /** KISS frame without FENDs: type byte (port << 4 | command), then the data. */
  AX25_KISS: 202,
  /** Raw IPv4, no link-layer header. */
  IPV4: 228,
  /** LoRaTap header, then the LoRa PHY payload. */
  LORATAP: 270,
  USER0: 147,
  USER1: 148,
} as const;

/** EPB direction, the low two bits of `epb_flags` (§4.3.1). */
export type Direction = 'in' | 'out';

/** Default snapshot length: the largest frame any meshgw link carries fits well below it. */
export const DEFAULT_SNAPLEN = 262_144;

const BLOCK_SHB = 0x0a0d0d0a;
const BLOCK_IDB = 0x00000001;
const BLOCK_EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const OPT_ENDOFOPT = 0;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_TSRESOL = 9;
const EPB_FLAGS = 2;

const pad4 = (n: number): number => (n + 3) & ~3;
const utf8 = new TextEncoder();

interface Option {
  code: number;
  value: Uint8Array;
}

/** Options as they appear in a block: code u16, length u16, value padded, then opt_endofopt. */
function optionsLength(options: Option[]): number {
  if (options.length === 0) return 0;
  return options.reduce((n, o) => n + 4 + pad4(o.value.length), 0) + 4;
}

function writeOptions(view: DataView, bytes: Uint8Array, at: number, options: Option[]): number {
  if (options.length === 0) return at;
  for (const o of options) {
    view.setUint16(at, o.code, true);
    view.setUint16(at + 2, o.value.length, true);
    bytes.set(o.value, at + 4);
    at += 4 + pad4(o.value.length);
  }
  view.setUint16(at, OPT_ENDOFOPT, true);
  view.setUint16(at + 2, 0, true);
  return at + 4;
}

/** Lays out one block around a body of `bodyLength` bytes that `fill` writes at offset 8. */
function block(type: number, bodyLength: number, fill: (view: DataView, bytes: Uint8Array) => void): Uint8Array {
  const total = 12 + bodyLength;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, type, true);
  view.setUint32(4, total, true);
  fill(view, bytes);
  view.setUint32(total - 4, total, true);
  return bytes;
}

/** Section Header Block, version 1.0, section length unknown (−1); optional `shb_userappl`. */
export function sectionHeaderBlock(userAppl?: string): Uint8Array {
  const options: Option[] = userAppl === undefined ? [] : [{ code: SHB_USERAPPL, value: utf8.encode(userAppl) }];
  return block(BLOCK_SHB, 16 + optionsLength(options), (view, bytes) => {
    view.setUint32(8, BYTE_ORDER_MAGIC, true);
    view.setUint16(12, 1, true);
    view.setUint16(14, 0, true);
    view.setBigInt64(16, -1n, true);
    writeOptions(view, bytes, 24, options);
  });
}

export interface InterfaceDescription {
  linkType: number;
  /** Written as the `if_name` option. */
  name: string;
  /** Largest number of bytes kept of each packet (0: no limit); default DEFAULT_SNAPLEN. */
  snaplen?: number;
}

/** Interface Description Block with `if_name` and `if_tsresol` = 6 (microseconds). */
export function interfaceDescriptionBlock(desc: InterfaceDescription): Uint8Array {
  const snaplen = desc.snaplen ?? DEFAULT_SNAPLEN;
  if (!Number.isInteger(desc.linkType) || desc.linkType < 0 || desc.linkType > 0xffff) {
    throw new RangeError(`link type must be 0..65535, got ${desc.linkType}`);
  }
  if (!Number.isInteger(snaplen) || snaplen < 0 || snaplen > 0xffffffff) throw new RangeError(`snaplen must be a u32, got ${snaplen}`);
  const options: Option[] = [
    { code: IF_NAME, value: utf8.encode(desc.name) },
    { code: IF_TSRESOL, value: Uint8Array.of(6) },
  ];
  return block(BLOCK_IDB, 8 + optionsLength(options), (view, bytes) => {
    view.setUint16(8, desc.linkType, true);
    view.setUint16(10, 0, true);
    view.setUint32(12, snaplen, true);
    writeOptions(view, bytes, 16, options);
  });
}

export interface PacketRecord {
  interfaceId: number;
  /** Wall-clock time, ms since the epoch (fractions kept to the microsecond). */
  timestampMs: number;
  data: Uint8Array;
  /** Length of the packet on the wire when `data` was cut to the snaplen; default data.length. */
  originalLength?: number;
  /** Written as `epb_flags` (inbound 1, outbound 2) when given. */
  direction?: Direction;
}

/** Enhanced Packet Block with a microsecond timestamp (the IDB's if_tsresol = 6). */
export function enhancedPacketBlock(p: PacketRecord): Uint8Array {
  const us = Math.round(p.timestampMs * 1000);
  if (!Number.isSafeInteger(us) || us < 0) throw new RangeError(`timestamp must be a non-negative time in ms, got ${p.timestampMs}`);
  const originalLength = p.originalLength ?? p.data.length;
  if (originalLength < p.data.length) throw new RangeError('original length is shorter than the captured data');
  const options: Option[] = [];
  if (p.direction !== undefined) {
    const flags = new Uint8Array(4);
    new DataView(flags.buffer).setUint32(0, p.direction === 'in' ? 1 : 2, true);
    options.push({ code: EPB_FLAGS, value: flags });
  }
  return block(BLOCK_EPB, 20 + pad4(p.data.length) + optionsLength(options), (view, bytes) => {
    view.setUint32(8, p.interfaceId, true);
    view.setUint32(12, Math.floor(us / 2 ** 32), true);
    view.setUint32(16, us % 2 ** 32, true);
    view.setUint32(20, p.data.length, true);
    view.setUint32(24, originalLength, true);
    bytes.set(p.data, 28);
    writeOptions(view, bytes, 28 + pad4(p.data.length), options);
  });
}

export interface PcapngFileOptions {
  /** Bytes that may wait to be written; a packet beyond it is dropped and counted. Default 4 MiB. */
  maxPendingBytes?: number;
  /** Written as `shb_userappl`; default 'meshgw'. */
  userAppl?: string;
}

/** A capture file that cannot be opened for writing. */
export class CaptureFileError extends Error {
  override name = 'CaptureFileError';
}

/**
 * Appends pcapng blocks to a file through a write stream. Packets are dropped (and counted in
 * `dropped`) while more than `maxPendingBytes` wait for the disk, or after a write error, so a
 * slow disk never grows memory without bound. Interface descriptions are never dropped: the
 * interface ids of later packets depend on them.
 *
 * `reopen()` is for log rotation (SIGHUP after `mv capture.pcapng capture.pcapng.1`): it starts a
 * new file at the same path with its own Section Header Block and the same Interface Description
 * Blocks in the same order, so every interface keeps its id and each file is readable alone. The
 * old file gets everything written before the swap, then is flushed and closed. A new file that
 * cannot be opened stops the capture — packets are dropped and counted, the old file is closed
 * rather than filled after it was moved away or deleted — until a later `reopen()` succeeds.
 */
export class PcapngFile {
  /**
   * Packets not written: pending bytes over the cap, a write error, while no file is open (a
   * failed reopen), or written after close.
   */
  dropped = 0;
  packets = 0;
  /** The first write error of the current file, if any; writing to it stops there. */
  error: Error | undefined;
  /** The current file; undefined while capture is stopped by a reopen that failed. */
  private stream: WriteStream | undefined;
  private readonly maxPending: number;
  private readonly userAppl: string;
  /** Every interface described so far, in id order: each new file repeats them. */
  private readonly interfaces: InterfaceDescription[] = [];
  private readonly snaplens: number[] = [];
  /** Old files still being flushed after a reopen; `close` waits for them. */
  private readonly retiring = new Set<Promise<Error | undefined>>();
  private closing: Promise<void> | undefined;

  /**
   * Opens (creates or truncates) the file now, so that a path that cannot be written fails here
   * with a CaptureFileError naming it, not at the first write. The constructor opens lazily and
   * reports such an error only at `close()`.
   */
  static open(path: string, options: PcapngFileOptions = {}): PcapngFile {
    return new PcapngFile(path, options, openCapture(path));
  }

  constructor(readonly path: string, options: PcapngFileOptions = {}, fd?: number) {
    this.maxPending = options.maxPendingBytes ?? 4 << 20;
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1) {
      throw new RangeError(`maxPendingBytes must be a positive integer, got ${this.maxPending}`);
    }
    this.userAppl = options.userAppl ?? 'meshgw';
    this.stream = this.start(fd === undefined ? createWriteStream(path) : createWriteStream(path, { fd }));
  }

  /** Whether packets are being written (false after a write error or a failed reopen, until a reopen succeeds). */
  get capturing(): boolean {
    return this.stream !== undefined && this.closing === undefined && this.error === undefined;
  }

  /** Describes one more interface; returns its id for `writePacket`. */
  addInterface(desc: InterfaceDescription): number {
    const idb = interfaceDescriptionBlock(desc);
    if (this.stream !== undefined && this.closing === undefined && this.error === undefined) this.stream.write(idb);
    this.interfaces.push({ ...desc });
    this.snaplens.push(desc.snaplen ?? DEFAULT_SNAPLEN);
    return this.snaplens.length - 1;
  }

  /** Queues one packet, cut to its interface's snaplen; returns false when it was dropped. */
  writePacket(p: PacketRecord): boolean {
    const snaplen = this.snaplens[p.interfaceId];
    if (snaplen === undefined) throw new RangeError(`no interface ${p.interfaceId} in this capture`);
    const cut = snaplen > 0 && p.data.length > snaplen;
    const epb = enhancedPacketBlock(cut ? { ...p, data: p.data.subarray(0, snaplen), originalLength: p.originalLength ?? p.data.length } : p);
    const stream = this.stream;
    if (stream === undefined || this.closing !== undefined || this.error !== undefined || stream.writableLength + epb.length > this.maxPending) {
      this.dropped++;
      return false;
    }
    stream.write(epb);
    this.packets++;
    return true;
  }

  /**
   * Starts a new file at `path` (see the class comment). Resolves once the old file is flushed
   * and closed. Rejects with a CaptureFileError when the new file cannot be opened — capture is
   * then stopped until a later reopen succeeds — or when the old file had a write error (the
   * new one is capturing then). After `close()` it does nothing.
   */
  async reopen(): Promise<void> {
    if (this.closing !== undefined) return;
    const old = this.stream;
    const oldError = this.error;
    let fd: number | undefined;
    let openError: CaptureFileError | undefined;
    try {
      fd = openCapture(this.path);
    } catch (err) {
      openError = err as CaptureFileError;
    }
    // The swap is synchronous: every packet goes to exactly one of the two files.
    this.stream = fd === undefined ? undefined : this.start(createWriteStream(this.path, { fd }));
    this.error = undefined;
    if (this.stream) for (const desc of this.interfaces) this.stream.write(interfaceDescriptionBlock(desc));
    const flushError = old ? await this.retire(old) : undefined;
    if (openError) throw new CaptureFileError(`${openError.message}; capture stopped (packets are dropped and counted) until the file can be opened`);
    const lost = oldError ?? flushError;
    if (lost) throw new CaptureFileError(`the old capture file (was ${this.path}) had a write error: ${lost.message}; the new one is capturing`);
  }

  /** Flushes and closes the file; rejects with the first write error. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const stream = this.stream;
      if (stream) {
        stream.end();
        await finished(stream);
      }
      await Promise.all([...this.retiring]);
      if (this.error) throw this.error;
    })();
    return this.closing;
  }

  /** A new file's stream, with the Section Header Block written first. */
  private start(stream: WriteStream): WriteStream {
    stream.on('error', (err) => {
      if (this.stream === stream) this.error ??= err;
    });
    stream.write(sectionHeaderBlock(this.userAppl));
    return stream;
  }

  /** Ends an old file; resolves, once it is flushed and closed, with its error if it had one. */
  private retire(stream: WriteStream): Promise<Error | undefined> {
    const done = (async () => {
      stream.end();
      try {
        await finished(stream);
        return undefined;
      } catch (err) {
        return err as Error;
      }
    })();
    this.retiring.add(done);
    void done.then(() => this.retiring.delete(done));
    return done;
  }
}

/** Opens (creates or truncates) a capture file for writing; throws a CaptureFileError naming it. */
function openCapture(path: string): number {
  try {
    return openSync(path, 'w', 0o644);
  } catch (err) {
    throw new CaptureFileError(`cannot write the capture file ${path}: ${(err as Error).message}`);
  }
}
