/**
 * The daemon's composition: from a DaemonConfig to a running gateway — the identity and its
 * lock, the boot token (epoch bound to the key, and a per-boot random), the mesh node, the
 * links, the capture file, the simulated neighbour of `--sim`, and one loop on a monotonic clock.
 * The CLI only parses flags into the config and calls `startDaemon`; on SIGHUP it calls `reopen`,
 * which starts a new capture file at the same path (the log is the CLI's own).
 */
import { kissSerialLink } from '../../drivers/kiss-serial.js';
import { kissTcpLink } from '../../drivers/kiss-tcp.js';
import { LoraSerialLink } from '../../drivers/lora-serial.js';
import { SlipSerialLink } from '../../drivers/slip-serial.js';
import { SimMedium, type SimLink } from '../../drivers/sim.js';
import { UdpLink } from '../../drivers/udp.js';
import { MonotonicClock, type SimClock } from '../link/clock.js';
import type { Link } from '../link/link.js';
import { PcapngFile } from '../link/pcap.js';
// prom-client (metrics.ts) is imported only with --metrics.
import type { DaemonMetrics } from './metrics.js';
import type { InterfaceConfig } from '../link/registry.js';
import { epochFileFor, nextEpoch } from '../mesh/epoch.js';
import { generateIdentity, loadOrCreateIdentity, sidHex, type Identity } from '../mesh/identity.js';
import { acquireKeyLock } from '../mesh/lock.js';
import { MeshNode } from '../mesh/node.js';
import { newBootNonce } from '../mesh/seal.js';
import { validateConfig, interfaceName, type DaemonConfig, type InterfaceSpec } from './config.js';
import { MspService } from '../msp/service.js';
import { EchoService } from '../api/echo.js';
import { meshgwVersion } from '../api/protocol.js';
import { ApiService } from '../api/server.js';
import { Gateway, type GatewayEvent, type GatewayService } from './gateway.js';
import type { MeshHost } from './host.js';

export interface DaemonIo {
  onEvent?: (e: GatewayEvent) => void;
  log?: (line: string) => void;
  /** Default: a MonotonicClock. */
  clock?: SimClock;
}

export interface Daemon {
  readonly identity: Identity;
  readonly node: MeshNode;
  readonly gateway: Gateway;
  readonly host: MeshHost;
  /** MSP streams over the mesh (the seed's socket API is `msp.sockets`). */
  readonly msp: MspService;
  /** Whether the node runs on a simulated radio only. */
  readonly simulated: boolean;
  /** The node's echo service (port 7, what ping talks to). */
  readonly echo: EchoService;
  /** The app API (undefined with `--api off`); `api.address` is where it listens. */
  readonly api: ApiService | undefined;
  /** Prometheus metrics (undefined without `--metrics`); `metrics.address` is where they are served. */
  readonly metrics: DaemonMetrics | undefined;
  /** When `startDaemon` began, on the gateway's clock (ms): what uptimes count from. */
  readonly startedAt: number;
  /**
   * Starts a new capture file at the `pcap` path, with its own section header and interface
   * descriptions (SIGHUP, after logrotate moved the old one away); without a capture, nothing.
   * Rejects with a CaptureFileError when the new file cannot be opened: capture then stops —
   * packets are counted as dropped — until a later `reopen` succeeds. The daemon runs on either way.
   */
  reopen(): Promise<void>;
  /**
   * Waits until every interface's pacer queue is empty, or `timeoutMs` passed; resolves with
   * the frames still queued (0: all gone). The loop keeps running meanwhile (call `stop` after).
   */
  drain(timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
  /** Releases the key lock at once (for a process that must exit without `stop`). */
  releaseLock(): void;
}

interface BuiltInterface {
  link: Link;
  config: InterfaceConfig;
  authOnly?: boolean;
}

/** What an MQTT interface publishes as its retained status (filled in once the gateway exists). */
export type StatusSource = () => Record<string, unknown>;

/**
 * Builds the links a config names (nothing is opened yet). The MQTT and TCP drivers are imported
 * only when a config names them. `status` gives the MQTT interfaces their retained status.
 */
export async function buildInterfaces(
  config: DaemonConfig,
  clock: SimClock,
  log: (line: string) => void,
  sid?: Uint8Array,
  status?: StatusSource,
): Promise<{ interfaces: BuiltInterface[]; services: GatewayService[] }> {
  const radio: InterfaceConfig = { region: config.region, ...(config.cap ? { cap: config.cap } : {}) };
  const tnc: InterfaceConfig = { ...radio, ...(config.frequency !== undefined ? { frequency: config.frequency } : {}) };
  const interfaces: BuiltInterface[] = [];
  const services: GatewayService[] = [];
  const counts = new Map<string, number>();
  for (const spec of config.interfaces) {
    const index = counts.get(spec.kind) ?? 0;
    counts.set(spec.kind, index + 1);
    const name = interfaceName(spec, index);
    const built = spec.kind === 'mqtt' || spec.kind === 'tcp-listen' || spec.kind === 'tcp-connect' ? { iface: await buildBridge(spec, name, log, sid, status) } : buildOne(spec, name, radio, tnc, config, clock, log);
    interfaces.push(built.iface);
    if (built.service) services.push(built.service);
  }
  return { interfaces, services };
}

function buildOne(
  spec: Exclude<InterfaceSpec, { kind: 'mqtt' | 'tcp-listen' | 'tcp-connect' }>,
  name: string,
  radio: InterfaceConfig,
  tnc: InterfaceConfig,
  config: DaemonConfig,
  clock: SimClock,
  log: (line: string) => void,
): { iface: BuiltInterface; service?: GatewayService } {
  const baud = (b: number | undefined): { baudRate?: number } => (b !== undefined ? { baudRate: b } : {});
  switch (spec.kind) {
    case 'lora': {
      const link = new LoraSerialLink({
        name,
        path: spec.path,
        radio: spec.radio,
        ...baud(spec.baudRate),
        ...(spec.minFirmware ? { minFirmware: spec.minFirmware } : {}),
        ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}),
        ...(config.cap?.shortPercent !== undefined ? { shortAirtimeLockPercent: config.cap.shortPercent } : {}),
        ...(config.cap?.longPercent !== undefined ? { longAirtimeLockPercent: config.cap.longPercent } : {}),
        log,
      });
      return { iface: { link, config: radio } };
    }
    case 'kiss':
      // A TNC is amateur radio: datagrams are authenticated, not encrypted, on the air.
      return { iface: { link: kissSerialLink({ name, path: spec.path, ...baud(spec.baudRate), ...(spec.callsign ? { callsign: spec.callsign } : {}), ...(spec.csma ? { csma: spec.csma } : {}), log }), config: tnc, authOnly: true } };
    case 'slip':
      return { iface: { link: new SlipSerialLink({ name, path: spec.path, ...baud(spec.baudRate), log }), config: tnc } };
    case 'kiss-tcp':
      return { iface: { link: kissTcpLink({ name, host: spec.host, port: spec.port, ...(spec.callsign ? { callsign: spec.callsign } : {}), ...(spec.csma ? { csma: spec.csma } : {}), log }), config: tnc, authOnly: true } };
    case 'udp':
      return {
        iface: {
          link: new UdpLink({
            name,
            port: spec.port,
            ...(spec.address ? { address: spec.address } : {}),
            ...(spec.interface ? { interface: spec.interface } : {}),
            ...(spec.peers && spec.peers.length > 0 ? { peers: spec.peers } : {}),
            ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}),
            log,
          }),
          config: {},
        },
      };
    case 'sim': {
      const medium = new SimMedium({ clock });
      const link = medium.attach(name, { log });
      return { iface: { link, config: {} }, service: simNeighbour(medium.attach(`${name}-neighbour`), clock) };
    }
  }
}

/** An interface between sites (MQTT broker, TCP): no band, no airtime; the pacer holds it to its rate caps. */
async function buildBridge(
  spec: Extract<InterfaceSpec, { kind: 'mqtt' | 'tcp-listen' | 'tcp-connect' }>,
  name: string,
  log: (line: string) => void,
  sid: Uint8Array | undefined,
  status: StatusSource | undefined,
): Promise<BuiltInterface> {
  const rates = {
    ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}),
    ...(spec.framesPerSecond !== undefined ? { framesPerSecond: spec.framesPerSecond } : {}),
    ...(spec.bytesPerSecond !== undefined ? { bytesPerSecond: spec.bytesPerSecond } : {}),
  };
  if (spec.kind === 'mqtt') {
    if (sid === undefined) throw new Error('an MQTT interface needs the node\'s SID');
    const { MqttLink } = await import('../../drivers/mqtt.js');
    const link = new MqttLink({
      name,
      url: spec.url,
      sid,
      ...rates,
      ...(spec.mesh !== undefined ? { mesh: spec.mesh } : {}),
      ...(spec.username !== undefined ? { username: spec.username } : {}),
      ...(spec.password !== undefined ? { password: spec.password } : {}),
      ...(spec.ca !== undefined ? { ca: spec.ca } : {}),
      ...(spec.cert !== undefined ? { cert: spec.cert } : {}),
      ...(spec.key !== undefined ? { key: spec.key } : {}),
      ...(spec.inFramesPerSecond !== undefined ? { inFramesPerSecond: spec.inFramesPerSecond } : {}),
      ...(spec.inBytesPerSecond !== undefined ? { inBytesPerSecond: spec.inBytesPerSecond } : {}),
      ...(status ? { status } : {}),
      log,
    });
    return { link, config: {} };
  }
  const { TcpConnectLink, TcpListenLink } = await import('../../drivers/tcp.js');
  const options = { name, host: spec.host, port: spec.port, ...rates, ...(spec.token !== undefined ? { token: spec.token } : {}), log };
  return { link: spec.kind === 'tcp-listen' ? new TcpListenLink(options) : new TcpConnectLink(options), config: {} };
}

/**
 * The simulated neighbour of `--sim`: a second mesh node on the same simulated medium, so the
 * gateway has someone to discover and route to. It runs inside the gateway's loop (no timer of
 * its own) and sends straight to its link: it stands for another radio, not for this node.
 */
function simNeighbour(link: SimLink, clock: SimClock): GatewayService {
  const node = new MeshNode({ identity: generateIdentity(), epoch: 1 });
  node.addInterface({ name: 'sim', mtu: link.mtu, airtimeMs: (b) => link.airtime.airtimeMs(Math.min(b, link.airtime.maxBytes)) }, clock.now());
  return {
    name: 'sim-neighbour',
    start: (gateway) => {
      node.onWake = () => gateway.loop.wake();
      link.on('frame', (f) => {
        node.receive('sim', f.data, clock.now());
        gateway.loop.wake();
      });
      void link.open();
    },
    stop: () => link.close(),
    poll: (now) => {
      if (now >= node.nextDeadline()) node.poll(now);
      node.dispatch();
      for (const out of node.takeOutput()) if (link.state === 'up') link.send(out.bytes);
    },
    nextDeadline: () => node.nextDeadline(),
  };
}

/** The daemon could not start for a reason found at run time (exit 1). */
export class StartError extends Error {
  override name = 'StartError';
}

/**
 * Starts the daemon. Throws KeyFileError / KeyLockError / EpochFileError (the CLI prints them and
 * exits 1), ConfigError for a config that cannot work (exit 2).
 */
export async function startDaemon(config: DaemonConfig, io: DaemonIo = {}): Promise<Daemon> {
  validateConfig(config);
  const log = io.log ?? (() => undefined);
  const clock = io.clock ?? new MonotonicClock();
  const startedAt = clock.now();
  // The capture file opens before anything else is made, so a bad path stops the start at once.
  const capture = config.pcap !== undefined ? PcapngFile.open(config.pcap) : undefined;
  let identity: Identity;
  let created: boolean;
  try {
    ({ identity, created } = loadOrCreateIdentity(config.keyFile, { createDirectory: config.createKeyDirectory !== false }));
  } catch (err) {
    await capture?.close().catch(() => undefined);
    throw err;
  }
  if (created) log(`created a new identity in ${config.keyFile}`);
  const lock = acquireKeyLock(config.stateDir, identity);
  try {
    const epochFile = epochFileFor(config.stateDir, identity);
    const boot = { epoch: nextEpoch(epochFile), nonce: newBootNonce() };
    const node = new MeshNode({ identity, boot, nextEpoch: () => nextEpoch(epochFile), log });
    let gatewayRef: Gateway | undefined;
    const bridgeStatus: StatusSource = () => ({
      version: meshgwVersion(),
      interfaces: gatewayRef?.status().map((st) => ({ name: st.name, kind: st.kind, state: st.state })) ?? [],
      neighbours: node.control.neighbours().filter((n) => n.symmetric).length,
    });
    const { interfaces, services } = await buildInterfaces(config, clock, log, identity.sid, bridgeStatus);
    const msp = new MspService({ log });
    const echo = new EchoService();
    const simulated = config.interfaces.every((i) => i.kind === 'sim');
    const api = config.api
      ? new ApiService({ host: config.api.host, port: config.api.port, ...(config.apiToken ? { token: config.apiToken } : {}), msp, simulated, log })
      : undefined;
    const onEvent = io.onEvent;
    const gateway = new Gateway({
      clock,
      interfaces,
      mesh: node,
      services: [msp, echo, ...(api ? [api] : []), ...services],
      ...(capture ? { capture } : {}),
      ...(onEvent || api
        ? {
            onEvent: (e: GatewayEvent) => {
              api?.handleGatewayEvent(e);
              onEvent?.(e);
            },
          }
        : {}),
      statusIntervalMs: config.statusIntervalMs,
      log,
    });
    gatewayRef = gateway;
    const reasons = new Map<string, string | undefined>();
    for (const { link } of interfaces) link.on('state', (_state, reason) => reasons.set(link.name, reason));
    await gateway.start();
    // A UDP port another program holds never frees itself: with nothing else up that is a failed
    // start, not a daemon that says "running" and waits forever.
    const unbound = interfaces.filter(({ link }) => (link.kind === 'udp' || link.kind === 'tcp-listen') && link.state === 'down' && /cannot bind/.test(reasons.get(link.name) ?? ''));
    if (unbound.length > 0) {
      const what = unbound.map(({ link }) => `${link.name}: ${reasons.get(link.name)}`).join('; ');
      const othersUp = interfaces.some(({ link }) => !unbound.some((u) => u.link === link) && link.state === 'up');
      if (!othersUp) {
        await gateway.stop();
        throw new StartError(`${what} — is another meshgw or program using that port? Choose another with --udp ADDR:PORT (or --tcp-listen HOST:PORT)`);
      }
      log(`warning: ${what}; the other interfaces run, and it is tried again with backoff`);
    }
    // The API listens once the node runs; a port in use stops what started and says where.
    let apiAt = 'off';
    if (api) {
      try {
        const a = await api.listen();
        apiAt = `tcp://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
      } catch (err) {
        await gateway.stop();
        throw err;
      }
    }
    let metrics: DaemonMetrics | undefined;
    let metricsAt = '';
    if (config.metrics) {
      const { DaemonMetrics } = await import('./metrics.js');
      metrics = new DaemonMetrics({ identity, node, gateway, msp, api, startedAt });
      try {
        const m = await metrics.listen(config.metrics.host, config.metrics.port);
        metricsAt = `; metrics http://${m.host.includes(':') ? `[${m.host}]` : m.host}:${m.port}/metrics`;
      } catch (err) {
        await gateway.stop();
        throw new StartError((err as Error).message);
      }
    }
    log(`node ${sidHex(identity.sid)} (boot epoch ${boot.epoch}); API ${apiAt}${metricsAt}`);
    return {
      identity,
      node,
      gateway,
      host: gateway.host!,
      msp,
      simulated,
      echo,
      api,
      metrics,
      startedAt,
      reopen: async () => {
        await capture?.reopen();
      },
      drain: async (timeoutMs) => {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const queued = gateway.status().reduce((n, s) => n + s.pacer.queuedFrames, 0);
          if (queued === 0 || Date.now() >= until) return queued;
          await new Promise((r) => setTimeout(r, Math.min(20, Math.max(1, until - Date.now()))));
        }
      },
      stop: async () => {
        try {
          await metrics?.close();
          await gateway.stop();
        } finally {
          lock.release();
        }
      },
      releaseLock: () => lock.release(),
    };
  } catch (err) {
    lock.release();
    await capture?.close().catch(() => undefined);
    throw err;
  }
}
