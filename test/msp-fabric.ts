/**
 * An in-memory datagram fabric for MSP sockets in virtual time: every node is an MspNetwork,
 * datagrams arrive after `delayMs` (optionally lost by `drop`), and `run(until)` delivers them and
 * calls each node's `processing` when due. Full duplex, always ready, 200-byte payloads.
 */
import type { MspPathEstimate } from '../src/msp/connection.js';
import { MspSockets, type MspDatagramPort, type MspNetwork } from '../src/msp/sockets.js';

interface InFlight {
  at: number;
  to: FakeNode;
  toPort: number;
  from: Uint8Array;
  fromPort: number;
  bytes: Uint8Array;
}

/** Datagrams between fake nodes, delivered after `delayMs`; `cut` drops everything. */
export class Fabric {
  now = 0;
  delayMs = 10;
  cut = false;
  /** Drops a datagram when it returns true (a seeded loss model). */
  drop: ((bytes: Uint8Array) => boolean) | undefined;
  inFlight: InFlight[] = [];
  nodes: FakeNode[] = [];
  sent = 0;

  node(id: number, options: ConstructorParameters<typeof MspSockets>[1] = {}): FakeNode {
    const n = new FakeNode(this, id, options);
    this.nodes.push(n);
    return n;
  }

  /** Runs everything up to `until`: deliveries at their time, processing of every node. */
  run(until: number): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      for (const n of this.nodes) n.processingIfDue(this.now);
      const next = Math.min(...this.inFlight.map((d) => d.at), ...this.nodes.map((n) => n.deadline ?? Infinity));
      if (next > until) break;
      this.now = Math.max(this.now, next);
      const due = this.inFlight.filter((d) => d.at <= this.now);
      this.inFlight = this.inFlight.filter((d) => d.at > this.now);
      for (const d of due) d.to.deliver(d);
    }
    this.now = until;
    for (const n of this.nodes) n.processingIfDue(this.now);
  }
}

export class FakeNode implements MspNetwork {
  readonly sid: Uint8Array;
  readonly sockets: MspSockets;
  readonly ports = new Map<number, (fromSid: Uint8Array, fromPort: number, bytes: Uint8Array) => void>();
  deadline: number | undefined = 0;
  private nextPort = 16;

  constructor(
    private readonly fabric: Fabric,
    id: number,
    options: ConstructorParameters<typeof MspSockets>[1],
  ) {
    this.sid = new Uint8Array(32).fill(id);
    this.sockets = new MspSockets(this, options);
    this.sockets.onWake = () => {
      this.deadline = this.fabric.now;
    };
  }

  bind(port: number, onDatagram: (fromSid: Uint8Array, fromPort: number, bytes: Uint8Array) => void): MspDatagramPort {
    if (port === 0) while (this.ports.has(this.nextPort)) this.nextPort++;
    const p = port === 0 ? this.nextPort++ : port;
    if (this.ports.has(p)) throw new Error(`port ${p} is already bound`);
    this.ports.set(p, onDatagram);
    return {
      port: p,
      send: (sid, toPort, bytes) => {
        const to = this.fabric.nodes.find((n) => n.sid[0] === sid[0]);
        this.fabric.sent++;
        if (to && !this.fabric.cut && !this.fabric.drop?.(bytes)) this.fabric.inFlight.push({ at: this.fabric.now + this.fabric.delayMs, to, toPort, from: this.sid, fromPort: p, bytes: bytes.slice() });
        return { ok: true };
      },
      close: () => this.ports.delete(p),
    };
  }
  maxPayload(): number {
    return 200;
  }
  ready(): boolean {
    return true;
  }
  /** What the host says of the first hop (undefined: nothing, the radio defaults). */
  path: MspPathEstimate | undefined;
  pathEstimate(): MspPathEstimate | undefined {
    return this.path;
  }

  deliver(d: InFlight): void {
    this.ports.get(d.toPort)?.(d.from, d.fromPort, d.bytes);
    this.deadline = this.fabric.now;
  }

  processingIfDue(now: number): void {
    if (this.deadline !== undefined && this.deadline <= now) this.deadline = this.sockets.processing(now);
    else this.deadline = this.sockets.nextDeadline(now);
  }
}

