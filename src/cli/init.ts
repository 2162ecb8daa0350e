/**
 * `meshgw init [FILE] [--force]`: writes a commented default config file (src/gateway/config-file.ts
 * reads it) to FILE, `meshgw.yaml` in the current directory by default, and prints `wrote FILE`
 * on stderr. Every key is in it, set to its default or shown commented out with what it does;
 * the one active interface is `sim`, so the default config runs without hardware.
 *
 * An existing FILE is left alone unless --force; a missing directory is an error (nothing is
 * created but the file). Errors print one line on stderr and set exit code 1.
 */
import type { Command } from 'commander';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { API_DEFAULT_PORT } from '../api/server.js';

export const DEFAULT_CONFIG_FILE = 'meshgw.yaml';

export const DEFAULT_CONFIG_YAML = `# meshgw config file (YAML), as written by \`meshgw init\`.
#
# Every key is optional. A key set below shows its default; a commented-out key (#key: ...)
# shows an example value, and what happens without it is said next to it. Unknown keys are
# errors, so a misspelt key is reported (with the key it probably meant) instead of ignored.

# Regional rules for radio interfaces: eu868 (EU 863-870 MHz duty cycles), us915 (FCC
# 902-928 MHz, 400 ms dwell on channels narrower than 500 kHz) or none (Wi-Fi, wire, or you
# answer for the band plan yourself: nothing is enforced). Default: none.
region: none

# Channel of TNC interfaces (kiss, slip, kiss-tcp), Hz, 100000000..3000000000. Required with
# region eu868 or us915 when there is a TNC interface (LoRa interfaces give their own
# radio.frequency). Absent: no channel, which region none accepts.
#frequency: 869525000

# Your own airtime cap on radio interfaces, on top of the region's: percent (0.01..100) of
# any 15 s (shortPercent) and of any hour (longPercent). Absent: only the region's limits.
#cap:
#  shortPercent: 10
#  longPercent: 1

# This node's key file, created on first start (its directory is created only for the
# default location). Absent: ~/.meshgw/identity.json.
#key: /var/lib/meshgw/identity.json

# Where the boot epoch and the lock of each key live. Absent: ~/.meshgw.
#stateDir: /var/lib/meshgw

# Capture every frame in and out to this pcapng file (Wireshark). Absent: no capture.
#pcap: /tmp/meshgw.pcapng

# Where the app API (Messi, meshgw.proto) listens: host and port (0..65535, 0: any free
# port), or off. Default: 127.0.0.1:${API_DEFAULT_PORT}.
api:
  host: 127.0.0.1
  port: ${API_DEFAULT_PORT}

# The secret API clients must send first; required when api.host is not loopback. Give it
# here or, better, in a file of its own (apiTokenFile: its trimmed contents, path relative
# to this file), not both. Absent: no token, which only a loopback API accepts.
#apiToken: change-me
#apiTokenFile: api-token

# Seconds between status events, 0..86400 (0: none). Default: 60.
statusInterval: 60

# Least severe log messages written: trace, debug, info, warn, error or fatal. Default: info.
# The log goes to stderr: JSON lines (pino) for journald and log shippers, short lines on a
# terminal; a line repeated within 10 s is written once, then summed up.
logLevel: info

# Append the log to this file (JSON lines) instead of stderr; SIGHUP (systemctl reload meshgw)
# reopens it and the capture file, for logrotate. Default: stderr (journald under systemd).
#logFile: /var/log/meshgw/meshgw.log

# Where the Prometheus metrics endpoint listens (host and port 0..65535), or off.
# Default: off.
metrics: off
#metrics:
#  host: 127.0.0.1
#  port: 9469

# Seconds a stop (SIGINT/SIGTERM) lets queued frames go before the links close, 0..300
# (a second signal exits at once). Default: 5.
shutdownTimeout: 5

# The interfaces the daemon runs on, each with a kind: lora, kiss, slip, kiss-tcp, udp,
# mqtt, tcp-listen, tcp-connect or sim. Any but sim may have a name (default: from its kind and position, e.g. lora0; a udp
# interface is named after its network interface). Absent or empty: the daemon refuses to
# start. Uncomment the ones you have.
interfaces:
  # A LoRa modem (RNode-compatible firmware) on a serial port, EU868 "g3" sub-band
  # (869.4-869.65 MHz, 10 % duty cycle). Needs region: eu868 above.
  # radio: frequency Hz; bandwidth Hz, one of 7800, 10400, 15600, 20800, 31250, 41700,
  # 62500, 125000, 250000, 500000; sf 5..12 (spreading factor); cr 5..8 (coding rate
  # 4/5..4/8); txPower 0..30 dBm. baudRate 300..4000000 (default 115200). minFirmware:
  # the oldest modem firmware accepted, e.g. "1.74" (older is refused at open, and retried).
  # mtu: largest frame, 1..508 (default 507: RNode sends 255 bytes or more as two LoRa
  # packets; 254 keeps every frame in one).
  #- kind: lora
  #  name: lora0
  #  path: /dev/ttyUSB0
  #  baudRate: 115200
  #  radio:
  #    frequency: 869525000
  #    bandwidth: 125000
  #    sf: 9
  #    cr: 5
  #    txPower: 14

  # The same modem in the US (region: us915 above). Channels narrower than 500 kHz may stay
  # on air at most 400 ms per frame: at 125 kHz only SF 8 or lower leaves room for a full
  # frame; a 500 kHz channel has no dwell limit.
  #- kind: lora
  #  path: /dev/ttyUSB0
  #  radio:
  #    frequency: 915000000
  #    bandwidth: 125000
  #    sf: 8
  #    cr: 5
  #    txPower: 14

  # A hardware KISS TNC on a serial port (baudRate default 9600). callsign: yours with an
  # SSID, for AX.25 UI framing. csma: the TNC parameters to set (txDelayMs, slotTimeMs,
  # txTailMs 0..2550 ms; persistence 0..1; fullDuplex true/false); absent: the TNC keeps
  # its own. With region eu868/us915 the top-level frequency is required.
  #- kind: kiss
  #  path: /dev/ttyACM0
  #  baudRate: 9600
  #  callsign: N0CALL-1
  #  csma:
  #    txDelayMs: 300
  #    persistence: 0.25
  #    slotTimeMs: 100
  #    txTailMs: 50
  #    fullDuplex: false

  # A SLIP modem on a serial port (baudRate default 115200).
  #- kind: slip
  #  path: /dev/ttyUSB1

  # A soft TNC over TCP: Direwolf's KISS port. callsign and csma as for kind: kiss.
  #- kind: kiss-tcp
  #  host: 127.0.0.1
  #  port: 8001
  #  callsign: N0CALL-2

  # Wi-Fi ad hoc (or any IP network): interface is a network interface name, or give
  # address, an IPv4 address to bind, instead (not both). port 1..65535. peers: static
  # unicast peers that get every one-to-all frame (links without broadcast, two daemons on
  # one host). mtu: largest datagram, 64..65507 bytes, default 1200.
  #- kind: udp
  #  interface: wlan0
  #  port: 4269
  #  peers:
  #    - address: 192.168.1.20
  #      port: 4269
  #  mtu: 1200

  # A bridge to other sites through an MQTT broker (Mosquitto, EMQX, HiveMQ…): url
  # mqtt[s]://[user@]host[:port][/prefix] (prefix default meshgw). Topics:
  # PREFIX/MESH/<short SID>/f (frames, sealed end to end) and PREFIX/MESH/<short SID>/status
  # (retained JSON; offline by last will). mesh: the mesh's name, default mesh. The password
  # inline, or better from passwordFile (relative to this file) or passwordEnv (a variable's
  # name); caFile for mqtts://, certFile + keyFile for a client certificate. Rates: at most
  # framesPerSecond (default 100) and bytesPerSecond (default 1000000) out, and from each
  # other gateway at most inFramesPerSecond (default 200) and inBytesPerSecond (2000000);
  # mtu default 4096.
  #- kind: mqtt
  #  url: mqtts://gateway-north@broker.example.org:8883/meshgw
  #  mesh: valley
  #  passwordFile: mqtt-password
  #  caFile: broker-ca.pem

  # A direct link between two sites over TCP: one end listens, the other connects. Beyond
  # loopback the listener needs a token, the same at both ends (token, tokenFile or
  # tokenEnv); it is checked by challenge and response before any frame is taken. Rates and
  # mtu as for mqtt.
  #- kind: tcp-listen
  #  host: 0.0.0.0
  #  port: 4400
  #  tokenFile: site-token
  #- kind: tcp-connect
  #  host: north.example.org
  #  port: 4400
  #  tokenFile: site-token

  # A simulated radio with a simulated neighbour node on it: runs without hardware.
  # Remove it once a real interface is uncommented. (It takes no name.)
  - kind: sim
`;

/**
 * Writes DEFAULT_CONFIG_YAML to `path` with mode 0644. Throws an Error when the file exists
 * (unless `force`), when its directory does not exist, or when it cannot be written.
 */
export function writeDefaultConfig(path: string, options: { force?: boolean } = {}): void {
  const dir = dirname(path);
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new Error(`cannot write ${path}: the directory ${dir} does not exist`);
  }
  if (!isDir) throw new Error(`cannot write ${path}: ${dir} is not a directory`);
  try {
    // 'wx' fails if the file exists, with no window between a check and the write.
    writeFileSync(path, DEFAULT_CONFIG_YAML, { mode: 0o644, flag: options.force ? 'w' : 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new Error(`${path} already exists; give --force to overwrite it`);
    if (code === 'EISDIR') throw new Error(`cannot write ${path}: it is a directory`);
    throw new Error(`cannot write ${path}: ${(err as Error).message}`);
  }
  // The mode given at creation is masked by the umask, and an overwritten file keeps its own.
  chmodSync(path, 0o644);
}

export interface InitCommandOptions {
  force?: boolean;
}

export function initOptions(cmd: Command): Command {
  return cmd
    .argument('[file]', 'where to write the config', DEFAULT_CONFIG_FILE)
    .option('--force', 'overwrite FILE if it exists');
}

export function runInitCommand(file: string, opts: InitCommandOptions): void {
  try {
    writeDefaultConfig(file, { force: opts.force === true });
  } catch (err) {
    process.stderr.write(`meshgw: ${(err as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stderr.write(`wrote ${file}\n`);
}

/** Registers `meshgw init [FILE] [--force]` on the program. */
export function initCommand(program: Command): void {
  initOptions(program.command('init').description('write a commented default config file (meshgw.yaml) to start from')).action(runInitCommand);
}
