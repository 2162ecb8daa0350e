/**
 * The node's echo service: what `ping` (the app API's `ping_req`) talks to. It listens on the
 * reserved datagram port ECHO_PORT and answers every datagram with the same bytes, to the port
 * it came from.
 *
 * It cannot be used to amplify or loop: the answer is never larger than the question, answers
 * come from a token bucket (ECHO_RATE per second, bursts of ECHO_BURST; beyond it datagrams are
 * dropped and counted), and a datagram from port ECHO_PORT (another node's echo service) is
 * never answered, so two echo services cannot bounce a datagram between them.
 */
import type { Gateway, GatewayService } from '../gateway/gateway.js';
import type { MeshSocket } from '../mesh/node.js';

/** The echo service's datagram port (below RESERVED_PORTS: one of the node's own services). */
export const ECHO_PORT = 7;
/** Answers per second at most (token bucket refill rate). */
export const ECHO_RATE = 20;
/** Answers in a burst at most (token bucket size). */
export const ECHO_BURST = 20;

export interface EchoCounters {
  answered: number;
  /** Dropped by the rate limit. */
  limited: number;
  /** From port ECHO_PORT: not answered (no echo loops). */
  loops: number;
  /** The answer was refused by the mesh (no route, queue full, ...). */
  refused: number;
}

export class EchoService implements GatewayService {
  readonly name = 'echo';
  readonly counters: EchoCounters = { answered: 0, limited: 0, loops: 0, refused: 0 };
  private socket: MeshSocket | undefined;
  private tokens = ECHO_BURST;
  private refilledAt = 0;

  start(gateway: Gateway): void {
    const host = gateway.host;
    if (host === undefined) throw new Error('the echo service needs a gateway with a mesh node');
    const clock = gateway.clock;
    this.refilledAt = clock.now();
    const socket = host.bind(ECHO_PORT, { reserved: true, priority: 'interactive' });
    this.socket = socket;
    socket.on('message', (from, port, bytes) => {
      if (port === ECHO_PORT) {
        this.counters.loops++;
        return;
      }
      if (!this.take(clock.now())) {
        this.counters.limited++;
        return;
      }
      const r = socket.send(from, port, bytes);
      if (r.ok) this.counters.answered++;
      else this.counters.refused++;
    });
  }

  stop(): void {
    this.socket?.close();
    this.socket = undefined;
  }

  poll(): void {}

  nextDeadline(): number | undefined {
    return undefined;
  }

  private take(now: number): boolean {
    this.tokens = Math.min(ECHO_BURST, this.tokens + ((now - this.refilledAt) * ECHO_RATE) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
