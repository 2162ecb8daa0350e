/**
 * A Wi-Fi ad hoc (or any IP) interface as a link: one UDP socket, one-to-all by directed
 * broadcast or a multicast group, one-to-one by unicast.
 *
 * Binding by interface name. Node has no SO_BINDTODEVICE, so the link binds 0.0.0.0:port: on
 * Linux that is the one address at which a socket receives both unicasts to any local address
 * and broadcasts (directed and 255.255.255.255); a socket bound to the interface's own address
 * would miss the broadcasts. The interface's IPv4 address and netmask (os.networkInterfaces())
 * give the directed broadcast address, address | ~netmask, to send to; and since a 0.0.0.0
 * socket hears every interface, datagrams from outside the interface's subnet (and not from a
 * static peer) are dropped, counted as 'off-interface'. Sends to the directed broadcast are
 * routed out of that interface with its address as the source. A missing interface is not an
 * error: the link stays 'down' and looks again with `Backoff` (1 s doubling to 30 s). Node lists
an interface only while it is up and running (has carrier: libuv skips the others), so a Wi-Fi
interface not yet joined, or a veth whose peer is down, counts as missing. While up, the
interface is looked at every 5 s (and after a failed send); if it went away or changed its
address the link goes 'reconnecting' and binds again.
 *
 * Not hearing itself. Linux loops a broadcast back to every local socket bound to its port,
 * including the sender's; multicast loopback is switched off, but a second socket could still
 * echo. A datagram whose source port is ours and whose source address is one of this host's
 * IPv4 addresses is our own echo: dropped, counted in `stats.selfEchoes`.
 *
 * Peers heard are learned (address:port, most recently heard first, at most `maxPeers`: the one
 * heard least recently is forgotten first) so that a reply can be unicast.
 */
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { isLoopbackHost } from '../src/link/address.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import { Backoff } from '../src/link/backoff.js';
import { BaseLink, countDrop, type Endpoint } from '../src/link/link.js';

export interface UdpLinkOptions {
  name: string;
  /** Network interface name ('wlan0', 'veth0'): binds 0.0.0.0 and broadcasts on its subnet. */
  interface?: string;
  /** Bind address, when no interface is named; default 0.0.0.0. */
  address?: string;
  /** Default 4269. */
  port?: number;
  /** Overrides the broadcast address worked out from the interface or the bind address. */
  broadcast?: string;
  /** One-to-all through this IPv4 multicast group instead of broadcast (needs a 0.0.0.0 bind). */
  multicastGroup?: string;
  /** Peers that get every one-to-all frame too (e.g. across a router). */
  peers?: Endpoint[];
  /**
   * Largest datagram, at most 65507 (the largest UDP/IPv4 payload). Default 1200 (see
   * airtime/fixed-rate.ts: safe on any path), or 65507 when the bind address and every static
   * peer are loopback addresses (127.0.0.0/8: nothing leaves the host, whose loopback carries
   * 64 KiB datagrams).
   */
  mtu?: number;
  /** Cap for the fixed-rate airtime model, bits/s; default none. */
  bitRate?: number;
  /** Learned peers kept, default 256. */
  maxPeers?: number;
  /**
   * Kernel receive and send buffer asked for, bytes; default 1 MiB (Linux caps it at
   * net.core.rmem_max / wmem_max). A burst larger than the receive buffer is lost in the kernel
   * before the loop reads it: the default holds a few hundred full datagrams.
   */
  socketBufferBytes?: number;
  /** Outgoing queue cap while the socket is not bound; default 256 frames. */
  queueCap?: number;
  log?: (line: string) => void;
}

export const DEFAULT_UDP_PORT = 4269;
export const DEFAULT_UDP_MTU = 1200;
const MAX_UDP_PAYLOAD = 65_507;
const INTERFACE_CHECK_MS = 5_000;
const DEFAULT_SOCKET_BUFFER_BYTES = 1024 * 1024;

/** Where the socket binds and where one-to-all frames go, as resolved at open. */
interface Binding {
  bindAddress: string;
  /** The interface's own address and netmask (interface mode), for the subnet filter. */
  subnet: { address: number; mask: number } | undefined;
  /** Destination of one-to-all frames: broadcast address or multicast group. */
  allAddress: string | undefined;
  /** Outgoing interface address for multicast. */
  interfaceAddress: string | undefined;
}

export class UdpLink extends BaseLink {
  readonly port: number;
  override readonly stats: { selfEchoes: number; oneToAll?: string; localAddress?: string } = { selfEchoes: 0 };
  private readonly options: UdpLinkOptions;
  private readonly maxPeers: number;
  /** address:port → endpoint, in order of last hearing (oldest first). */
  private readonly learned = new Map<string, Endpoint>();
  private readonly backoff = new Backoff();
  private socket: Socket | undefined;
  private binding: Binding | undefined;
  private ownAddresses = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private sendFailing = false;

  constructor(options: UdpLinkOptions) {
    const mtu = options.mtu ?? defaultMtu(options);
    if (mtu > MAX_UDP_PAYLOAD) throw new RangeError(`${options.name}: MTU ${mtu} exceeds the UDP maximum of ${MAX_UDP_PAYLOAD}`);
    const airtime = new FixedRateAirtimeModel({ maxBytes: mtu, ...(options.bitRate !== undefined ? { bitRate: options.bitRate } : {}) });
    super(options.name, 'udp', mtu, airtime, options.bitRate, options.queueCap ?? 256, options.log);
    this.options = options;
    this.port = options.port ?? DEFAULT_UDP_PORT;
    this.maxPeers = options.maxPeers ?? 256;
    if (!Number.isInteger(this.maxPeers) || this.maxPeers < 1) throw new RangeError(`${this.name}: maxPeers must be ≥ 1`);
  }

  /** Peers heard, most recently heard first. */
  peers(): Endpoint[] {
    return [...this.learned.values()].reverse().map((e) => ({ ...e }));
  }

  /** Where our datagrams come from (for captures), once bound. */
  localEndpoint(): Endpoint | undefined {
    const b = this.binding;
    return b ? { address: b.interfaceAddress ?? b.bindAddress, port: this.port } : undefined;
  }

  /** Where one-to-all datagrams go (broadcast address or multicast group), once bound. */
  broadcastEndpoint(): Endpoint | undefined {
    const all = this.binding?.allAddress;
    return all ? { address: all, port: this.port } : undefined;
  }

  /** Binds, or (interface missing, bind failed) goes 'down' and keeps trying. */
  async open(): Promise<void> {
    if (this.state === 'closed') throw new Error(`${this.name}: link is closed`);
    if (this.state === 'opening' || this.socket || this.retryTimer) return;
    this.setState('opening');
    await this.attempt();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchTimer);
    this.retryTimer = this.watchTimer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    this.setState('closed');
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  protected pump(): void {
    const socket = this.socket;
    const binding = this.binding;
    if (this.state !== 'up' || !socket || !binding) return;
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      const to = next.options?.to;
      const targets: Endpoint[] = to
        ? [to]
        : [...(binding.allAddress ? [{ address: binding.allAddress, port: this.port }] : []), ...(this.options.peers ?? [])];
      // Node keeps a Uint8Array until the datagram is written; copy so the caller may reuse theirs.
      const data = Buffer.from(next.data);
      for (const t of targets) socket.send(data, t.port, t.address, (err) => this.afterSend(err, t));
      this.sent(next.data.length);
    }
  }

  private afterSend(err: Error | null, to: Endpoint): void {
    if (!err) {
      this.sendFailing = false;
      return;
    }
    countDrop(this.counters, 'send-error');
    if (!this.sendFailing) this.log(`${this.name}: send to ${to.address}:${to.port} failed: ${err.message}`);
    this.sendFailing = true;
    this.checkInterface();
  }

  /** Rebinds if the interface went away or changed its address. */
  private checkInterface(): void {
    if (this.state !== 'up' || this.options.interface === undefined) return;
    const now = this.resolve();
    if (!sameBinding(this.binding, now)) this.restart(typeof now === 'string' ? now : 'interface address changed');
  }

  private async attempt(): Promise<void> {
    this.retryTimer = undefined;
    const binding = this.resolve();
    if (typeof binding === 'string') return this.retry(binding);
    const socket = createSocket({ type: 'udp4' });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(this.port, binding.bindAddress, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      socket.setBroadcast(true);
      this.sizeBuffers(socket);
      if (this.options.multicastGroup) {
        socket.setMulticastLoopback(false);
        if (binding.interfaceAddress) socket.setMulticastInterface(binding.interfaceAddress);
        socket.addMembership(this.options.multicastGroup, binding.interfaceAddress);
      }
    } catch (err) {
      socket.close();
      return this.retry(`cannot bind ${binding.bindAddress}:${this.port}: ${(err as Error).message}`);
    }
    if (this.state === 'closed') {
      socket.close();
      return;
    }
    this.socket = socket;
    this.binding = binding;
    this.ownAddresses = localAddresses();
    this.ownAddresses.add(binding.bindAddress);
    this.stats.oneToAll = binding.allAddress;
    this.stats.localAddress = binding.interfaceAddress ?? binding.bindAddress;
    socket.on('message', (msg, rinfo) => this.receive(msg, { address: rinfo.address, port: rinfo.port }));
    socket.on('error', (err) => this.restart(err.message));
    this.backoff.reset();
    if (this.options.interface !== undefined) {
      this.watchTimer = setInterval(() => this.checkInterface(), INTERFACE_CHECK_MS);
      this.watchTimer.unref(); // the socket keeps the process alive, not the watch
    }
    this.setState('up', `${binding.bindAddress}:${this.port}${binding.allAddress ? ` → ${binding.allAddress}` : ''}`);
    this.pump();
  }

  /** Asks for larger kernel buffers; the kernel may give less, and a refusal is only logged. */
  private sizeBuffers(socket: Socket): void {
    const want = this.options.socketBufferBytes ?? DEFAULT_SOCKET_BUFFER_BYTES;
    try {
      if (socket.getRecvBufferSize() < want) socket.setRecvBufferSize(want);
      if (socket.getSendBufferSize() < want) socket.setSendBufferSize(want);
    } catch (err) {
      this.log(`${this.name}: kernel socket buffers stay at their defaults: ${(err as Error).message}`);
    }
  }

  /** Drops the socket and tries again later (state 'reconnecting'). */
  private restart(reason: string): void {
    if (this.state === 'closed') return;
    clearInterval(this.watchTimer);
    this.watchTimer = undefined;
    closeQuietly(this.socket);
    this.socket = undefined;
    this.counters.reconnects++;
    this.setState('reconnecting', reason);
    this.schedule();
  }

  private retry(reason: string): void {
    if (this.state === 'closed') return;
    // 'down' once, however many attempts fail (setState logs only changes).
    if (this.state !== 'reconnecting') this.setState('down', reason);
    this.schedule();
  }

  private schedule(): void {
    this.retryTimer = setTimeout(() => void this.attempt(), this.backoff.next());
  }

  /** The binding for the options as the host is now, or why there is none. */
  private resolve(): Binding | string {
    const o = this.options;
    if (o.interface !== undefined) {
      const entry = networkInterfaces()[o.interface]?.find((a) => a.family === 'IPv4');
      if (!entry) return `interface ${o.interface} has no IPv4 address`;
      const address = toUint32(entry.address);
      const mask = toUint32(entry.netmask);
      return {
        bindAddress: '0.0.0.0',
        subnet: { address, mask },
        allAddress: o.multicastGroup ?? o.broadcast ?? fromUint32((address | ~mask) >>> 0),
        interfaceAddress: entry.address,
      };
    }
    const bindAddress = o.address ?? '0.0.0.0';
    // A bind address on a local interface broadcasts on its subnet; 0.0.0.0 uses 255.255.255.255.
    const owner = Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .find((a) => a.address === bindAddress);
    const directed = owner ? fromUint32((toUint32(owner.address) | ~toUint32(owner.netmask)) >>> 0) : '255.255.255.255';
    return {
      bindAddress,
      subnet: undefined,
      allAddress: o.multicastGroup ?? o.broadcast ?? directed,
      interfaceAddress: owner?.address,
    };
  }

  private receive(msg: Buffer, from: Endpoint): void {
    if (from.port === this.port && this.ownAddresses.has(from.address)) {
      this.stats.selfEchoes++;
      return;
    }
    const subnet = this.binding?.subnet;
    if (subnet && ((toUint32(from.address) ^ subnet.address) & subnet.mask) !== 0 && !this.isStaticPeer(from)) {
      countDrop(this.counters, 'off-interface');
      return;
    }
    if (msg.length > this.mtu) {
      countDrop(this.counters, 'too-large-in');
      return;
    }
    const key = `${from.address}:${from.port}`;
    this.learned.delete(key);
    this.learned.set(key, from);
    if (this.learned.size > this.maxPeers) this.learned.delete(this.learned.keys().next().value!);
    this.deliver({ data: new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), at: Date.now(), from: { ...from } });
  }

  private isStaticPeer(e: Endpoint): boolean {
    return (this.options.peers ?? []).some((p) => p.address === e.address && p.port === e.port);
  }
}

/** Closes a socket that may already be closing (after an error). */
function closeQuietly(socket: Socket | undefined): void {
  try {
    socket?.close();
  } catch {
    // already closed
  }
}

function sameBinding(a: Binding | undefined, b: Binding | string): boolean {
  return typeof b !== 'string' && a !== undefined && a.allAddress === b.allAddress && a.interfaceAddress === b.interfaceAddress;
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

function toUint32(dotted: string): number {
  const parts = dotted.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) return 0;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function fromUint32(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}


/** 1200, or the largest UDP payload when nothing can leave the host (see `mtu`). */
function defaultMtu(o: UdpLinkOptions): number {
  const local = o.interface === undefined && o.address !== undefined && isLoopbackHost(o.address);
  return local && (o.peers ?? []).every((p) => isLoopbackHost(p.address)) ? MAX_UDP_PAYLOAD : DEFAULT_UDP_MTU;
}
