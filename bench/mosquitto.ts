/**
 * A real Mosquitto broker for tests and the bench (the MQTT link's tests, the daemons' end-to-end
 * tests, bench/bridge.ts): started
 * on a loopback port with a config file written into a temporary directory, stopped and started
 * again on the same port (broker loss), removed with its directory by `dispose()`.
 *
 *   const broker = await startMosquitto({ users: { alice: 's3cret' } });
 *   broker.url              // 'mqtt://127.0.0.1:PORT' (no credentials: add them yourself)
 *   await broker.stop();    // SIGKILL by default: the broker vanishes as in a crash
 *   await broker.start();   // same port, same config
 *   await broker.dispose(); // stop and remove the directory (call it in afterAll / finally)
 *
 * Mosquitto missing is a failure, never a skip: `startMosquitto` throws "install mosquitto
 * (apt-get install -y mosquitto)". `makeTestCertificates` makes a CA and a server certificate
 * (subjectAltName IP:127.0.0.1 and DNS:localhost) with `openssl`, and a client certificate,
 * for TLS listeners.
 *
 * The broker's output (log_dest stdout, every log type) is kept, at most the last 256 KiB,
 * for `output()` — useful in a failing test's message.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** A loopback TCP port free now (the bench cannot import the tests' helpers). */
async function freeTcpPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface MosquittoOptions {
  /** Loopback port to listen on; default a free one. */
  port?: number;
  /** User names and passwords: a password file is made with mosquitto_passwd, anonymous clients are refused. */
  users?: Record<string, string>;
  /** An existing password file instead of `users`. */
  passwordFile?: string;
  /** Default: true without users or a password file, false with. */
  allowAnonymous?: boolean;
  /** A TLS listener (PEM file paths); `ca` and `requireCertificate` for client certificates. */
  tls?: { cert: string; key: string; ca?: string; requireCertificate?: boolean };
  /** More lines for mosquitto.conf. */
  extraConfig?: string[];
}

export interface Mosquitto {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** mqtt://127.0.0.1:PORT, or mqtts:// for a TLS listener. */
  readonly url: string;
  /** The temporary directory holding the config (and the password file). */
  readonly dir: string;
  /** Whether the broker process is running. */
  readonly running: boolean;
  /** Starts the broker again (same port, same config) and waits until it accepts connections. */
  start(): Promise<void>;
  /** Kills the broker (SIGKILL by default) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the broker and removes its directory. */
  dispose(): Promise<void>;
  /** What the broker printed (the last 256 KiB). */
  output(): string;
}

const INSTALL_HINT = 'install mosquitto (apt-get install -y mosquitto)';
const MAX_OUTPUT = 256 * 1024;
const START_DEADLINE_MS = 15_000;

/** The path of an executable in PATH or the usual sbin/bin directories, or undefined. */
function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const binary = findExecutable('mosquitto');
  if (!binary) throw new Error(`mosquitto not found: ${INSTALL_HINT}`);
  const port = options.port ?? (await freeTcpPort());
  const dir = mkdtempSync(join(tmpdir(), 'meshgw-mosquitto-'));
  const config = [`listener ${port} 127.0.0.1`, 'persistence false', 'log_dest stdout', 'log_type all', 'connection_messages true'];
  // Started as root, Mosquitto would switch to the user 'mosquitto', who cannot read our directory.
  if (process.getuid?.() === 0) config.push('user root');
  let passwordFile = options.passwordFile;
  if (options.users) {
    const passwd = findExecutable('mosquitto_passwd');
    if (!passwd) throw new Error(`mosquitto_passwd not found: ${INSTALL_HINT}`);
    passwordFile = join(dir, 'passwords');
    let first = true;
    for (const [user, password] of Object.entries(options.users)) {
      execFileSync(passwd, [...(first ? ['-c'] : []), '-b', passwordFile, user, password], { stdio: 'pipe' });
      first = false;
    }
    chmodSync(passwordFile, 0o600);
  }
  if (passwordFile) config.push(`password_file ${passwordFile}`);
  config.push(`allow_anonymous ${options.allowAnonymous ?? passwordFile === undefined}`);
  if (options.tls) {
    config.push(`certfile ${options.tls.cert}`, `keyfile ${options.tls.key}`);
    if (options.tls.ca) config.push(`cafile ${options.tls.ca}`);
    config.push(`require_certificate ${options.tls.requireCertificate === true}`);
  }
  config.push(...(options.extraConfig ?? []));
  const configFile = join(dir, 'mosquitto.conf');
  writeFileSync(configFile, config.join('\n') + '\n');

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  const keep = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (output.length > MAX_OUTPUT) output = output.slice(-MAX_OUTPUT);
  };

  const start = async (): Promise<void> => {
    if (child) return;
    const proc = spawn(binary, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let gone = false;
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    exited = new Promise<void>((resolve) => {
      proc.once('exit', () => {
        gone = true;
        if (child === proc) child = undefined;
        resolve();
      });
      proc.once('error', (err) => {
        keep(Buffer.from(`spawn failed: ${err.message}\n`));
        gone = true;
        if (child === proc) child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + START_DEADLINE_MS;
    for (;;) {
      if (gone) throw new Error(`mosquitto exited at start on port ${port}:\n${output}`);
      if (await canConnect(port)) return;
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on port ${port} within ${START_DEADLINE_MS} ms:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill(signal);
    await exited;
  };

  try {
    await start();
  } catch (err) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const scheme = options.tls ? 'mqtts' : 'mqtt';
  return {
    host: '127.0.0.1',
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    dir,
    get running() {
      return child !== undefined;
    },
    start,
    stop,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    output: () => output,
  };
}

/** Whether something accepts TCP connections on the loopback port. */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export interface TestCertificates {
  /** PEM file paths. */
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A second CA that signed nothing here: the wrong CA. */
  otherCaCert: string;
}

/**
 * A CA, a server certificate for 127.0.0.1 / localhost and a client certificate signed by it,
 * and an unrelated CA, all P-256 and valid for two days, written into `dir` with `openssl`.
 */
export function makeTestCertificates(dir: string): TestCertificates {
  const openssl = findExecutable('openssl');
  if (!openssl) throw new Error('openssl not found: install it (apt-get install -y openssl)');
  const run = (args: string[]): void => {
    execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=meshgw test CA']);
  run(['req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=meshgw other CA']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    run(['req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=meshgw test ${who}`]);
    run(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '2', '-extfile', `${who}.ext`]);
  }
  for (const key of ['ca.key', 'other-ca.key', 'server.key', 'client.key']) chmodSync(join(dir, key), 0o600);
  return {
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    otherCaCert: join(dir, 'other-ca.crt'),
  };
}
