/**
 * Prometheus metrics of a running daemon: a registry of its own (never prom-client's global
 * one) whose collectors read the daemon's state at scrape time — the interfaces (link counters,
 * pacer queue, drops and airtime per budget window), the mesh node (neighbours, routes, datagram
 * counters), MSP's socket stats and the app API — plus prom-client's process metrics, all
 * prefixed `meshgw_`. Running totals the daemon keeps are exposed as counters set from those
 * totals; nothing here counts on its own, so a scrape never changes what the daemon does.
 *
 * `listen(host, port)` serves them over plain HTTP: `GET /metrics` (the text format), `GET /` (a
 * pointer to /metrics), 404 for anything else; a collection that fails answers 500 with one line.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ApiStats } from '../api/server.js';
import { meshgwVersion } from '../api/protocol.js';
import type { PacerCounters } from '../link/pacer.js';
import type { InterfaceStatus } from '../link/registry.js';
import { sidHex } from '../mesh/identity.js';
import type { NodeCounters } from '../mesh/node.js';
import type { MspSocketsStats } from '../msp/sockets.js';
import type { Daemon } from './daemon.js';

type Labels = Record<string, string>;
type Sample = [Labels, number];

/** What one scrape reads from the daemon, taken once so every family sees the same moment. */
interface Snapshot {
  uptimeMs: number;
  interfaces: Array<{ status: InterfaceStatus; pacer: PacerCounters | undefined }>;
  /** Symmetric neighbours per interface (every interface present, 0 without any). */
  neighbours: Map<string, number>;
  routes: number;
  mesh: NodeCounters;
  /** Undefined until MSP has started. */
  msp: MspSocketsStats | undefined;
  /** Undefined with `--api off`. */
  api: ApiStats | undefined;
  apiClients: number;
}

const PREFIX = 'meshgw_';

/**
 * What the metrics read of a daemon (a `Daemon` is one; tests may compose less). `startedAt`:
 * when the daemon started, on its gateway's clock (a `Daemon`'s own); without it, uptime counts
 * from when the metrics were made.
 */
export type MetricsSource = Pick<Daemon, 'identity' | 'node' | 'gateway' | 'msp' | 'api'> & { startedAt?: number };

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly contentType: string;
  private readonly startedAt: number;
  /** The snapshot of the scrape under way (set by `text`), else each collector takes its own. */
  private current: Snapshot | undefined;
  private server: Server | undefined;

  constructor(private readonly daemon: MetricsSource) {
    // Uptime is the daemon's, from the start of `startDaemon` (links opening, the API binding and
    // the metrics server included), not from whenever its metrics were made.
    this.startedAt = daemon.startedAt ?? daemon.gateway.clock.now();
    this.contentType = this.registry.contentType;
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    this.define();
  }

  /** The metrics in the Prometheus text format. */
  async text(): Promise<string> {
    this.current = this.snapshot();
    try {
      return await this.registry.metrics();
    } finally {
      this.current = undefined;
    }
  }

  /** Serves `/metrics` on host:port (0: any free port); resolves with where it listens. */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    if (this.server) throw new Error('the metrics server is already listening');
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        server.off('listening', onListening);
        const why = err.code === 'EADDRINUSE' ? 'the address is in use' : err.message;
        reject(new Error(`cannot serve metrics on ${where}: ${why}`, { cause: err }));
      };
      const onListening = (): void => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(port, host);
    });
    // Errors after the start (a client's socket) are the client's; the server carries on.
    server.on('error', () => undefined);
    server.on('clientError', (_err, socket) => socket.destroy());
    this.server = server;
    const a = server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Stops the HTTP server (open keep-alive connections included); the registry stays usable. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  // -------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const get = req.method === 'GET' || req.method === 'HEAD';
      if (get && path === '/metrics') {
        let body: string;
        try {
          body = await this.text();
        } catch (err) {
          reply(res, 500, 'text/plain; charset=utf-8', `metrics collection failed: ${oneLine(err)}\n`);
          return;
        }
        reply(res, 200, this.contentType, body);
      } else if (get && path === '/') {
        reply(res, 200, 'text/html; charset=utf-8', '<html><body>meshgw: metrics are at <a href="/metrics">/metrics</a></body></html>\n');
      } else {
        reply(res, 404, 'text/plain; charset=utf-8', 'not found: metrics are at /metrics\n');
      }
    } catch {
      // A response that cannot be written (the client went away) ends here.
      if (!res.headersSent) res.statusCode = 500;
      res.destroy();
    }
  }

  private snapshot(): Snapshot {
    const { gateway, node } = this.daemon;
    const now = gateway.clock.now();
    const interfaces = gateway.registry.status(now).map((status) => ({ status, pacer: gateway.registry.get(status.name)?.pacer.counters }));
    const neighbours = new Map<string, number>(interfaces.map((i) => [i.status.name, 0]));
    for (const n of node.control.neighbours()) if (n.symmetric) neighbours.set(n.iface, (neighbours.get(n.iface) ?? 0) + 1);
    let msp: MspSocketsStats | undefined;
    try {
      msp = this.daemon.msp.sockets.stats;
    } catch {
      msp = undefined; // not started yet
    }
    return {
      uptimeMs: Math.max(0, now - this.startedAt),
      interfaces,
      neighbours,
      routes: node.routes().length,
      mesh: node.counters,
      msp,
      api: this.daemon.api?.stats,
      apiClients: this.daemon.api?.clientCount ?? 0,
    };
  }

  private read(): Snapshot {
    return this.current ?? this.snapshot();
  }

  /** A gauge whose samples `read` gives at each scrape. */
  private gauge(name: string, help: string, labelNames: string[], read: (s: Snapshot) => Sample[]): void {
    const self = this;
    new Gauge({
      name: PREFIX + name,
      help,
      labelNames,
      registers: [this.registry],
      collect(this: Gauge) {
        const samples = read(self.read());
        this.reset();
        for (const [labels, value] of samples) if (Number.isFinite(value)) this.set(labels, value);
      },
    });
  }

  /** A counter set from the daemon's running totals at each scrape. */
  private counter(name: string, help: string, labelNames: string[], read: (s: Snapshot) => Sample[]): void {
    const self = this;
    new Counter({
      name: PREFIX + name,
      help,
      labelNames,
      registers: [this.registry],
      collect(this: Counter) {
        const samples = read(self.read());
        this.reset();
        for (const [labels, value] of samples) if (Number.isFinite(value)) this.inc(labels, Math.max(0, value));
      },
    });
  }

  private define(): void {
    const sid = sidHex(this.daemon.identity.sid);
    const perIface = (f: (i: Snapshot['interfaces'][number]) => Sample[]) => (s: Snapshot) => s.interfaces.flatMap(f);

    this.gauge('info', 'The daemon: its version and its node SID (always 1).', ['version', 'sid'], () => [[{ version: meshgwVersion(), sid }, 1]]);
    this.gauge('uptime_seconds', 'Seconds since the daemon started.', [], (s) => [[{}, s.uptimeMs / 1000]]);

    // Interfaces.
    this.gauge('interface_up', 'Whether the interface’s link is up (1) or not (0).', ['interface', 'kind'], perIface(({ status }) => [[{ interface: status.name, kind: status.kind }, status.state === 'up' ? 1 : 0]]));
    this.counter('interface_frames_total', 'Frames the link received (in) and wrote (out).', ['interface', 'direction'], perIface(({ status: { name, counters } }) => [
      [{ interface: name, direction: 'in' }, counters.framesIn],
      [{ interface: name, direction: 'out' }, counters.framesOut],
    ]));
    this.counter('interface_bytes_total', 'Bytes of the frames the link received (in) and wrote (out).', ['interface', 'direction'], perIface(({ status: { name, counters } }) => [
      [{ interface: name, direction: 'in' }, counters.bytesIn],
      [{ interface: name, direction: 'out' }, counters.bytesOut],
    ]));
    this.counter(
      'interface_drops_total',
      'Frames dropped: by the link (layer="link": queue-full, too-large, modem-error, ...) and refused or evicted by the pacer (layer="pacer": dwell, too-large, queue-full, flow-full, evicted, superseded).',
      ['interface', 'layer', 'reason'],
      perIface(({ status, pacer }) => [
        ...Object.entries(status.counters.drops).map(([reason, n]): Sample => [{ interface: status.name, layer: 'link', reason }, n]),
        ...Object.entries(pacer?.drops ?? {}).map(([reason, n]): Sample => [{ interface: status.name, layer: 'pacer', reason }, n]),
      ]),
    );
    this.counter('interface_send_refused_total', 'Frames taken from the pacer that the link’s send threw for (too-large, closed, or the error’s name).', ['interface', 'reason'], perIface(({ status }) =>
      Object.entries(status.refused).map(([reason, n]): Sample => [{ interface: status.name, reason }, n]),
    ));
    this.counter('interface_decode_errors_total', 'Received frames the link could not decode.', ['interface'], perIface(({ status }) => [[{ interface: status.name }, status.counters.decodeErrors]]));
    this.counter('interface_reconnects_total', 'Times the link reconnected.', ['interface'], perIface(({ status }) => [[{ interface: status.name }, status.counters.reconnects]]));
    this.gauge('interface_queue_frames', 'Frames waiting in the interface’s pacer.', ['interface'], perIface(({ status }) => [[{ interface: status.name }, status.pacer.queuedFrames]]));
    this.gauge('interface_queue_bytes', 'Bytes of the frames waiting in the interface’s pacer.', ['interface'], perIface(({ status }) => [[{ interface: status.name }, status.pacer.queuedBytes]]));
    this.gauge('interface_blocked', 'Whether the link asked the pacer to wait (1) until it takes more frames.', ['interface'], perIface(({ status }) => [[{ interface: status.name }, status.blocked ? 1 : 0]]));
    this.counter('interface_airtime_seconds_total', 'Airtime of the frames the pacer released to the link, seconds.', ['interface'], perIface(({ status, pacer }) => (pacer ? [[{ interface: status.name }, pacer.sentAirtimeMs / 1000]] : [])));
    this.gauge('interface_duty_cycle_ratio', 'Airtime used in the budget’s sliding window ÷ the window’s length (window: the budget’s name).', ['interface', 'window'], perIface(({ status }) =>
      status.pacer.windows.map((w): Sample => [{ interface: status.name, window: w.name }, w.windowMs > 0 ? w.usedMs / w.windowMs : 0]),
    ));
    this.gauge('interface_duty_cycle_limit_ratio', 'The airtime the budget allows in its window ÷ the window’s length.', ['interface', 'window'], perIface(({ status }) =>
      status.pacer.windows.map((w): Sample => [{ interface: status.name, window: w.name }, w.windowMs > 0 ? w.limitMs / w.windowMs : 0]),
    ));
    this.gauge('interface_airtime_left_seconds', 'Airtime left in the budget’s sliding window, seconds.', ['interface', 'window'], perIface(({ status }) =>
      status.pacer.windows.map((w): Sample => [{ interface: status.name, window: w.name }, w.leftMs / 1000]),
    ));

    // The mesh node.
    this.gauge('neighbours', 'Symmetric neighbours heard on the interface.', ['interface'], (s) => [...s.neighbours].map(([iface, n]): Sample => [{ interface: iface }, n]));
    this.gauge('routes', 'Destinations the node has a route to.', [], (s) => [[{}, s.routes]]);
    this.counter('mesh_datagrams_sent_total', 'Datagrams the node handed to an interface (its own and forwarded ones).', [], (s) => [[{}, s.mesh.sent]]);
    this.counter('mesh_datagrams_delivered_total', 'Datagrams delivered to a local port.', [], (s) => [[{}, s.mesh.delivered]]);
    this.counter('mesh_datagrams_forwarded_total', 'Datagrams forwarded towards another node.', [], (s) => [[{}, s.mesh.forwarded]]);
    this.counter('mesh_refused_total', 'Datagrams the node did not send, by reason (no-route, too-large, no-key, the pacer’s reason, ...).', ['reason'], (s) =>
      Object.entries(s.mesh.refused).map(([reason, n]): Sample => [{ reason }, n]),
    );
    this.counter('mesh_dropped_total', 'Received frames the node dropped, by reason.', ['reason'], (s) => Object.entries(s.mesh.dropped).map(([reason, n]): Sample => [{ reason }, n]));
    this.counter('mesh_listener_errors_total', 'Exceptions thrown by socket listeners, caught by the node.', [], (s) => [[{}, s.mesh.listenerErrors]]);

    // MSP (zero until it has started).
    const msp = (name: string, help: string, value: (m: MspSocketsStats) => number): void =>
      this.counter(name, help, [], (s) => [[{}, s.msp ? value(s.msp) : 0]]);
    msp('msp_sockets_opened_total', 'MSP sockets opened.', (m) => m.socketsOpened);
    msp('msp_connections_accepted_total', 'MSP connections accepted by listeners.', (m) => m.connectionsAccepted);
    msp('msp_messages_delivered_total', 'MSP messages delivered to handlers.', (m) => m.messagesDelivered);
    msp('msp_bytes_delivered_total', 'MSP stream bytes delivered to handlers.', (m) => m.bytesDelivered);
    msp('msp_handler_errors_total', 'Exceptions thrown by MSP socket handlers.', (m) => m.handlerErrors);
    msp('msp_packets_sent_total', 'MSP packets the network took.', (m) => m.packetsSent);
    this.counter('msp_send_refused_total', 'MSP packets the network refused, by reason.', ['reason'], (s) =>
      Object.entries(s.msp?.sendRefused ?? {}).map(([reason, n]): Sample => [{ reason }, n]),
    );

    // The app API (zero with `--api off`).
    this.gauge('api_clients', 'App API clients connected now.', [], (s) => [[{}, s.apiClients]]);
    this.counter('api_connections_total', 'Connections the app API accepted.', [], (s) => [[{}, s.api?.connected ?? 0]]);
    this.counter('api_requests_total', 'Requests the app API handled.', [], (s) => [[{}, s.api?.requests ?? 0]]);
    this.counter('api_refused_auth_total', 'App API clients refused for a wrong or missing token.', [], (s) => [[{}, s.api?.refusedAuth ?? 0]]);
    this.counter('api_errors_total', 'Errors the app API answered, by code.', ['code'], (s) => Object.entries(s.api?.errors ?? {}).map(([code, n]): Sample => [{ code }, n]));
  }
}

function reply(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.slice(0, 200);
}
