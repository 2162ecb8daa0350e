/**
 * Drives a sans-IO MeshNode straight over links, without interface pacers: link frames in, the
 * node's frames out to its links, queued datagrams handed to listeners, and one timer on a clock.
 * The light harness of the mesh tests and simulations; the daemon runs the node inside the
 * Gateway's loop instead (loop.ts), where every frame goes through its interface's pacer.
 *
 * Like the loop, it never lets a frame wait for someone else's deadline: whatever the node
 * produces (a send, a delivery, a control packet) wakes the runner at the current time.
 */
import type { SimClock, TimerHandle } from '../link/clock.js';
import type { Link } from '../link/link.js';
import type { MeshNode, OutFrame } from '../mesh/node.js';

export interface MeshRunnerOptions {
  node: MeshNode;
  clock: SimClock;
  /** The node's interfaces, by the names the node knows them by. */
  links: Map<string, Link>;
  /** How a frame leaves; default link.send. */
  transmit?: (frame: OutFrame) => void;
}

export class MeshRunner {
  private timer: TimerHandle | undefined;
  private immediate: TimerHandle | undefined;
  private stopped = false;
  /** Frames a link refused (too large, closed), by reason. */
  readonly refused: Record<string, number> = {};

  constructor(private readonly options: MeshRunnerOptions) {
    for (const [name, link] of options.links) {
      link.on('frame', (f) => {
        options.node.receive(name, f.data, options.clock.now(), f.from);
        this.flush();
      });
    }
    options.node.onWake = () => this.wake();
  }

  start(): void {
    this.options.node.poll(this.options.clock.now());
    this.flush();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.immediate?.cancel();
  }

  /** Sends what the node produced, hands out deliveries, and re-arms the timer. */
  flush(): void {
    if (this.stopped) return;
    const { node, clock, links, transmit } = this.options;
    node.dispatch();
    for (const out of node.takeOutput()) {
      if (transmit) {
        transmit(out);
        continue;
      }
      const link = links.get(out.iface);
      if (!link || link.state !== 'up') {
        this.refused['link-down'] = (this.refused['link-down'] ?? 0) + 1;
        continue;
      }
      try {
        link.send(out.bytes, out.to ? { to: out.to } : undefined);
      } catch (err) {
        const reason = (err as Error).name;
        this.refused[reason] = (this.refused[reason] ?? 0) + 1;
      }
    }
    this.timer?.cancel();
    const at = node.nextDeadline();
    this.timer = clock.setTimer(at, () => {
      this.timer = undefined;
      node.poll(clock.now());
      this.flush();
    });
  }

  /** Runs `flush` at the current time, once, however many wakes come before it. */
  private wake(): void {
    if (this.stopped || this.immediate) return;
    this.immediate = this.options.clock.setTimer(this.options.clock.now(), () => {
      this.immediate = undefined;
      this.flush();
    });
  }
}
