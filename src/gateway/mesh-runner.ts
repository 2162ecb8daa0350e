/**
 * Drives a sans-IO MeshNode: link frames in, the node's frames out to its links, and one timer on
 * a clock (a VirtualClock in simulations, the RealClock in the daemon). The only glue between the
 * mesh layer and the links.
 */
import type { SimClock, TimerHandle } from '../link/clock.js';
import type { Link } from '../link/link.js';
import type { MeshNode, OutFrame } from '../mesh/node.js';

export interface MeshRunnerOptions {
  node: MeshNode;
  clock: SimClock;
  /** The node's interfaces, by the names the node knows them by. */
  links: Map<string, Link>;
  /** How a frame leaves (the gateway: through the interface's pacer); default link.send. */
  transmit?: (frame: OutFrame) => void;
}

export class MeshRunner {
  private timer: TimerHandle | undefined;
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
  }

  start(): void {
    this.options.node.poll(this.options.clock.now());
    this.flush();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** Sends what the node produced and re-arms the timer for its next deadline. */
  flush(): void {
    if (this.stopped) return;
    const { node, clock, links, transmit } = this.options;
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
}
