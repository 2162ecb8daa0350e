/**
 * The sending side of one Strokkur message, sans-IO: `next()` hands out the encoded chunks, the
 * k source chunks first (as they are), then the 1 + R redundant rows, each computed when asked.
 *
 * The state keeps a reference to the caller's data (which must stay alive and unchanged until the
 * state is done) and copies only the tail: the last chunk or two, which hold the end of the
 * message, its digest and the zero padding. Memory beyond the data: about 3 chunks.
 */
import { randomBytes } from '@noble/hashes/utils.js';
import {
  HASH_LENGTH,
  MAX_CHUNK_SIZE,
  MAX_MESSAGE,
  MAX_REDUNDANT_ROWS,
  MAX_ROWS,
  encodeChunk,
  sourceChunks,
  type ChunkHeader,
  type DigestAlgorithm,
} from './chunk.js';
import { MAX_SHA3_KEY, coefficientWords, digestOf, isDigestAlgorithm, rowCoefficients, xorAll, xorAt, xorGather } from './code.js';

export interface SendOptions {
  /** Payload bytes per chunk (chunkSizeFor(pathMtu)). */
  chunkSize: number;
  /** R ≥ 0: 1 + R redundant rows follow the k source chunks. */
  redundancy: number;
  /** Preshared key: the digest becomes keyed (HMAC-SHA-256, or keyed SHA3-256): authentication. */
  key?: Uint8Array;
  /**
   * The digest family: 'sha256' (default: what every version-1 receiver decodes, and the faster
   * under OpenSSL) or 'sha3-256' (byte 1's S bit; receivers from the S bit on).
   */
  digest?: DigestAlgorithm;
  /** 16 bytes; random when absent. */
  uuid?: Uint8Array;
  /** u32 seed of the redundant rows' coefficients; random when absent. */
  seed?: number;
  /** A source of numbers in [0, 1) for the uuid and seed (tests); crypto randomness when absent. */
  random?: () => number;
}

export class SendState {
  readonly uuid: Uint8Array;
  readonly k: number;
  readonly rows: number;
  readonly seed: number;
  readonly chunkSize: number;
  readonly messageSize: number;
  readonly keyed: boolean;
  readonly digest: DigestAlgorithm;

  private readonly data: Uint8Array;
  /** Index of the first source chunk that is (partly) in `tail`. */
  private readonly firstTail: number;
  /** Chunks firstTail..k-1, each at a stride of `words` words: message end, digest, zeros. */
  private readonly tail: Uint32Array;
  private readonly tailBytes: Uint8Array;
  /** The data as words when it and every chunk in it are 4-byte aligned; else chunks are copied. */
  private readonly dataWords: Uint32Array | undefined;
  private readonly words: number;
  private readonly scratch: Uint32Array;
  private readonly scratchBytes: Uint8Array;
  private readonly copies: Uint32Array[] = [];
  private readonly coefficients: Uint32Array;
  private readonly operands: Uint32Array[] = [];
  /** Word offsets into dataWords of the row being summed (aligned data). */
  private readonly offsets: number[] = [];
  private produced = 0;
  /** The chunks' header, its index set per chunk (encodeChunk keeps nothing of it). */
  private readonly header: ChunkHeader;

  /** Throws RangeError for empty or oversized data and for options out of range. */
  constructor(data: Uint8Array, options: SendOptions) {
    if (!(data instanceof Uint8Array)) throw new RangeError('data must be a Uint8Array');
    if (data.length < 1 || data.length > MAX_MESSAGE) throw new RangeError(`message of ${data.length} bytes, outside 1..${MAX_MESSAGE}`);
    const { chunkSize, redundancy } = options;
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
      throw new RangeError(`chunk size ${chunkSize} outside 1..${MAX_CHUNK_SIZE}`);
    }
    if (!Number.isInteger(redundancy) || redundancy < 0 || redundancy + 1 > MAX_REDUNDANT_ROWS) {
      throw new RangeError(`redundancy ${redundancy} outside 0..${MAX_REDUNDANT_ROWS - 1}`);
    }
    const k = sourceChunks(data.length, chunkSize);
    if (k + 1 + redundancy > MAX_ROWS) {
      throw new RangeError(`${k} chunks of ${chunkSize} bytes + ${1 + redundancy} redundant rows exceed ${MAX_ROWS} rows: use larger chunks`);
    }
    if (options.key !== undefined && (!(options.key instanceof Uint8Array) || options.key.length === 0)) {
      throw new RangeError('key must be a non-empty Uint8Array');
    }
    const digestAlgorithm = options.digest ?? 'sha256';
    if (!isDigestAlgorithm(digestAlgorithm)) throw new RangeError(`digest must be 'sha256' or 'sha3-256', got ${String(options.digest)}`);
    if (digestAlgorithm === 'sha3-256' && options.key !== undefined && options.key.length > MAX_SHA3_KEY) {
      throw new RangeError(`keyed SHA3-256 takes a key of at most ${MAX_SHA3_KEY} bytes`);
    }
    if (options.uuid !== undefined && (!(options.uuid instanceof Uint8Array) || options.uuid.length !== 16)) {
      throw new RangeError('uuid must be 16 bytes');
    }
    if (options.seed !== undefined && (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff)) {
      throw new RangeError(`seed ${options.seed} is not a u32`);
    }
    const random = options.random;
    const randomU8 = (n: number): Uint8Array =>
      random === undefined ? randomBytes(n) : Uint8Array.from({ length: n }, () => Math.floor(random() * 256) & 0xff);
    this.uuid = options.uuid !== undefined ? options.uuid.slice() : randomU8(16);
    if (options.uuid === undefined) {
      this.uuid[6] = (this.uuid[6]! & 0x0f) | 0x40; // RFC 9562 version 4
      this.uuid[8] = (this.uuid[8]! & 0x3f) | 0x80; // variant
    }
    if (options.seed !== undefined) this.seed = options.seed;
    else {
      const s = randomU8(4);
      this.seed = ((s[0]! << 24) | (s[1]! << 16) | (s[2]! << 8) | s[3]!) >>> 0;
    }
    this.k = k;
    this.rows = k + 1 + redundancy;
    this.chunkSize = chunkSize;
    this.messageSize = data.length;
    this.keyed = options.key !== undefined;
    this.digest = digestAlgorithm;
    this.data = data;

    this.words = (chunkSize + 3) >>> 2;
    const stride = this.words * 4;
    this.firstTail = Math.floor(data.length / chunkSize);
    this.tail = new Uint32Array((k - this.firstTail) * this.words);
    this.tailBytes = new Uint8Array(this.tail.buffer);
    const digest = digestOf(data, options.key, undefined, digestAlgorithm);
    // The coded data from firstTail on: message end ‖ digest ‖ zeros, laid out chunk by chunk.
    const put = (bytes: Uint8Array, codedOffset: number): void => {
      for (let i = 0; i < bytes.length; ) {
        const pos = codedOffset + i - this.firstTail * chunkSize;
        const chunk = Math.floor(pos / chunkSize);
        const within = pos - chunk * chunkSize;
        const n = Math.min(chunkSize - within, bytes.length - i);
        this.tailBytes.set(bytes.subarray(i, i + n), chunk * stride + within);
        i += n;
      }
    };
    put(data.subarray(this.firstTail * chunkSize), this.firstTail * chunkSize);
    put(digest.subarray(0, HASH_LENGTH), data.length);

    const aligned = chunkSize % 4 === 0 && data.byteOffset % 4 === 0;
    this.dataWords = aligned && this.firstTail > 0 ? new Uint32Array(data.buffer, data.byteOffset, (this.firstTail * chunkSize) / 4) : undefined;
    this.scratch = new Uint32Array(this.words);
    this.scratchBytes = new Uint8Array(this.scratch.buffer, 0, chunkSize);
    this.coefficients = new Uint32Array(coefficientWords(k));
    this.header = { uuid: this.uuid, messageSize: this.messageSize, k, chunkSize, rows: this.rows, index: 0, seed: this.seed, keyed: this.keyed };
    if (digestAlgorithm !== 'sha256') this.header.digest = digestAlgorithm;
  }

  get done(): boolean {
    return this.produced >= this.rows;
  }

  get remaining(): number {
    return this.rows - this.produced;
  }

  /** The next chunk to transmit (encoded bytes), or undefined when all rows were produced. */
  next(): Uint8Array | undefined {
    if (this.produced >= this.rows) return undefined;
    const index = this.produced++;
    const header = this.header;
    header.index = index;
    return encodeChunk({ header, payload: index < this.k ? this.sourcePayload(index) : this.redundantPayload(index) });
  }

  /** The bytes of source chunk j (a view: into the caller's data, or into the tail). */
  private sourcePayload(j: number): Uint8Array {
    const cs = this.chunkSize;
    if (j < this.firstTail) return this.data.subarray(j * cs, (j + 1) * cs);
    const at = (j - this.firstTail) * this.words * 4;
    return this.tailBytes.subarray(at, at + cs);
  }

  /** Source chunk j as `words` words (zero beyond chunkSize): a view when aligned, else a copy. */
  private sourceWords(j: number, copySlot: number): Uint32Array {
    const w = this.words;
    if (j >= this.firstTail) return this.tail.subarray((j - this.firstTail) * w, (j - this.firstTail + 1) * w);
    if (this.dataWords !== undefined) return this.dataWords.subarray(j * w, (j + 1) * w);
    let copy = this.copies[copySlot];
    if (copy === undefined) {
      copy = new Uint32Array(w);
      this.copies[copySlot] = copy;
    }
    new Uint8Array(copy.buffer, 0, this.chunkSize).set(this.sourcePayload(j));
    return copy;
  }

  /** The XOR of the source chunks that row `index` selects. */
  private redundantPayload(index: number): Uint8Array {
    const scratch = this.scratch;
    scratch.fill(0);
    rowCoefficients(this.seed, index, this.k, this.coefficients);
    if (this.dataWords !== undefined) return this.redundantAligned();
    const ops = this.operands;
    let n = 0;
    const flush = (): void => {
      xorAll(scratch, ops, n, this.words);
      n = 0;
    };
    const c = this.coefficients;
    for (let w = 0; w < c.length; w++) {
      let bits = c[w]!;
      while (bits !== 0) {
        const low = bits & -bits;
        const j = (w << 5) + (31 - Math.clz32(low));
        bits ^= low;
        ops[n] = this.sourceWords(j, n);
        n++;
        if (n === 4) flush();
      }
    }
    flush();
    return this.scratchBytes;
  }

  /** As redundantPayload, for aligned data: the chunks before the tail summed from one array at offsets. */
  private redundantAligned(): Uint8Array {
    const w = this.words;
    const data = this.dataWords!;
    const offsets = this.offsets;
    const c = this.coefficients;
    let n = 0;
    for (let word = 0; word < c.length; word++) {
      let bits = c[word]!;
      while (bits !== 0) {
        const low = bits & -bits;
        const j = (word << 5) + (31 - Math.clz32(low));
        bits ^= low;
        if (j < this.firstTail) offsets[n++] = j * w;
        else xorAt(this.scratch, 0, this.tail, (j - this.firstTail) * w, w);
      }
    }
    xorGather(this.scratch, 0, data, offsets, n, w);
    return this.scratchBytes;
  }
}
