/**
 * `meshgw ports`: the serial ports on this machine, with their USB ids and a guess of the device
 * behind them. `--json` prints one array.
 *
 * The listing comes from `SerialPort.list()` (node-serialport; on Linux it reads `udevadm info
 * -e`). Where that fails or finds nothing (a container without udevadm), the ports come from the
 * device nodes instead: /dev/serial/by-id (symlinks, resolved), /dev/ttyUSB* and /dev/ttyACM*,
 * the on-board UARTs a Raspberry Pi HAT sits on (/dev/serial0 and /dev/serial1, resolved, and
 * /dev/ttyAMA* and /dev/ttyS* that have a device behind them in sysfs: ttyS* only when its UART
 * type is not 0, "unknown", which the kernel's placeholder ports have), with USB ids read from sysfs (/sys/class/tty/NAME/device, up to the USB device's idVendor,
 * idProduct, manufacturer and serial files) where it has them.
 */
import type { Command } from 'commander';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';

export interface PortEntry {
  path: string;
  manufacturer: string | null;
  /** Four lowercase hex digits. */
  vendorId: string | null;
  productId: string | null;
  serialNumber: string | null;
  /** The name under /dev/serial/by-id, when there is one. */
  byId: string | null;
  /** A Raspberry Pi's stable name for an on-board UART (/dev/serial0, /dev/serial1), when it points here. */
  alias?: string;
  /** What the USB ids suggest the device is. */
  guess: string | null;
}

/**
 * USB ids of serial bridges and boards that radio modems are built on. Sources: the Linux
 * usb-serial and cdc-acm drivers' id tables and the vendors' own documentation; the "RNode-like"
 * notes are the boards RNode firmware ships for (ESP32-S3 native USB, nRF52840 on RAK4631).
 */
const BY_ID: Record<string, string> = {
  '0403:6001': 'FTDI FT232R USB serial',
  '0403:6010': 'FTDI FT2232 dual USB serial',
  '0403:6014': 'FTDI FT232H USB serial',
  '0403:6015': 'FTDI FT-X (FT230X/FT231X) USB serial',
  '1a86:7523': 'WCH CH340 USB serial (common on ESP32 LoRa boards)',
  '1a86:55d4': 'WCH CH9102 USB serial (newer ESP32 LoRa boards)',
  '10c4:ea60': 'Silicon Labs CP210x USB serial (common on ESP32 LoRa boards)',
  '067b:2303': 'Prolific PL2303 USB serial',
  '0483:5740': 'STM32 USB virtual COM port (CDC firmware)',
};

const BY_VENDOR: Record<string, string> = {
  '0403': 'FTDI USB serial (TNCs and modems with an FTDI bridge)',
  '1a86': 'WCH USB serial bridge',
  '10c4': 'Silicon Labs USB serial bridge',
  '303a': 'Espressif native USB (ESP32-S2/S3/C3): RNode-like on an ESP32-S3 board',
  '239a': 'Adafruit VID, nRF52 boards (RAK4631 and others): RNode-like on nRF52840',
  '2341': 'Arduino board',
  '2a03': 'Arduino board (arduino.org)',
  '04d8': 'Microchip USB device',
};

/** Normalizes a USB id ('0x0403', '403', 'EA60') to four lowercase hex digits. */
function hexId(id: string | null | undefined): string | null {
  if (!id) return null;
  const m = /^(?:0x)?([0-9a-f]{1,4})$/i.exec(id.trim());
  return m?.[1] ? m[1].toLowerCase().padStart(4, '0') : null;
}

/** A guess of the device from its USB vendor and product ids, or null. */
export function guessDevice(vendorId: string | null | undefined, productId: string | null | undefined): string | null {
  const vid = hexId(vendorId);
  if (vid === null) return null;
  const pid = hexId(productId);
  return (pid !== null ? BY_ID[`${vid}:${pid}`] : undefined) ?? BY_VENDOR[vid] ?? null;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function readTrimmed(file: string): Promise<string | null> {
  try {
    const s = (await readFile(file, 'utf8')).trim();
    return s === '' ? null : s;
  } catch {
    return null;
  }
}

/** The USB device's attributes for a tty, from sysfs under `root`. */
async function sysfsUsb(root: string, name: string): Promise<Pick<PortEntry, 'manufacturer' | 'vendorId' | 'productId' | 'serialNumber'>> {
  const none = { manufacturer: null, vendorId: null, productId: null, serialNumber: null };
  let dir: string;
  try {
    dir = await realpath(join(root, 'sys', 'class', 'tty', name, 'device'));
  } catch {
    return none;
  }
  // ttyACM: device is the USB interface, its parent the USB device; ttyUSB: one level more.
  for (let up = 0; up < 4; up++, dir = dirname(dir)) {
    const vendorId = hexId(await readTrimmed(join(dir, 'idVendor')));
    if (vendorId === null) continue;
    return {
      vendorId,
      productId: hexId(await readTrimmed(join(dir, 'idProduct'))),
      manufacturer: await readTrimmed(join(dir, 'manufacturer')),
      serialNumber: await readTrimmed(join(dir, 'serial')),
    };
  }
  return none;
}

/** Whether a ttyAMA or ttyS node has a UART behind it (see the header of this file). */
async function hasUart(root: string, name: string): Promise<boolean> {
  try {
    await realpath(join(root, 'sys', 'class', 'tty', name, 'device'));
  } catch {
    return false;
  }
  if (!name.startsWith('ttyS')) return true;
  const type = await readTrimmed(join(root, 'sys', 'class', 'tty', name, 'type'));
  return type !== null && type !== '0';
}

function byNumber(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * Serial ports from the device nodes under `root` (default '/'): /dev/serial/by-id symlinks
 * (resolved), /dev/ttyUSB* and /dev/ttyACM*. Paths are given as seen from `root`.
 */
export async function listDeviceNodes(root = '/'): Promise<PortEntry[]> {
  const toPath = (real: string): string => '/' + relative(root, real).split(sep).join('/');
  const byId = new Map<string, string>();
  const byIdDir = join(root, 'dev', 'serial', 'by-id');
  for (const link of (await entries(byIdDir)).sort()) {
    try {
      const path = toPath(await realpath(join(byIdDir, link)));
      if (!byId.has(path)) byId.set(path, link);
    } catch {
      // A dangling link: the device went away while we looked.
    }
  }
  const paths = new Set(byId.keys());
  const aliases = new Map<string, string>();
  for (const alias of ['serial0', 'serial1']) {
    try {
      const path = toPath(await realpath(join(root, 'dev', alias)));
      paths.add(path);
      if (!aliases.has(path)) aliases.set(path, `/dev/${alias}`);
    } catch {
      // No such alias (not a Raspberry Pi, or that UART is off).
    }
  }
  for (const name of await entries(join(root, 'dev'))) {
    if (/^tty(USB|ACM)\d+$/.test(name)) paths.add(`/dev/${name}`);
    else if (/^tty(AMA|S)\d+$/.test(name) && (await hasUart(root, name))) paths.add(`/dev/${name}`);
  }
  const ports: PortEntry[] = [];
  for (const path of [...paths].sort(byNumber)) {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const usb = await sysfsUsb(root, name);
    const onBoard = /^tty(AMA|S)\d+$/.test(name) && usb.vendorId === null;
    const alias = aliases.get(path);
    ports.push({
      path,
      ...usb,
      byId: byId.get(path) ?? null,
      ...(alias ? { alias } : {}),
      guess: guessDevice(usb.vendorId, usb.productId) ?? (onBoard ? 'on-board UART (a HAT on the GPIO header, or a console)' : null),
    });
  }
  return ports;
}

/** What SerialPort.list() returns for one port (node-serialport's PortInfo). */
export interface SerialPortInfo {
  path: string;
  manufacturer?: string | undefined;
  serialNumber?: string | undefined;
  pnpId?: string | undefined;
  vendorId?: string | undefined;
  productId?: string | undefined;
}

export function fromPortInfo(p: SerialPortInfo): PortEntry {
  const vendorId = hexId(p.vendorId);
  const productId = hexId(p.productId);
  return {
    path: p.path,
    manufacturer: p.manufacturer ?? null,
    vendorId,
    productId,
    serialNumber: p.serialNumber ?? null,
    byId: p.pnpId ?? null,
    guess: guessDevice(vendorId, productId),
  };
}

export interface ListPortsDeps {
  list?: () => Promise<SerialPortInfo[]>;
  root?: string;
  warn?: (line: string) => void;
}

async function serialportList(): Promise<SerialPortInfo[]> {
  const { SerialPort } = await import('serialport');
  return SerialPort.list();
}

/** The ports from SerialPort.list(), or from the device nodes where that fails or finds none. */
export async function listPorts(deps: ListPortsDeps = {}): Promise<PortEntry[]> {
  const warn = deps.warn ?? ((line: string) => process.stderr.write(line + '\n'));
  let reason: string;
  try {
    const found = await (deps.list ?? serialportList)();
    if (found.length > 0) return found.map(fromPortInfo);
    reason = 'serialport listed no ports';
  } catch (err) {
    reason = `serialport's listing failed (${err instanceof Error ? err.message : String(err)})`;
  }
  const nodes = await listDeviceNodes(deps.root);
  // An empty listing is usual on a machine with no serial device: say so only when it matters.
  if (nodes.length > 0 || reason.startsWith("serialport's")) warn(`${reason}; listing device nodes instead`);
  return nodes;
}

/** The plain-text table `meshgw ports` prints. */
export function formatPorts(ports: PortEntry[]): string {
  if (ports.length === 0) return 'no serial ports found';
  const rows = [
    ['PATH', 'VID:PID', 'MANUFACTURER', 'SERIAL', 'DEVICE'],
    ...ports.map((p) => [
      p.alias ? `${p.path} (${p.alias})` : p.path,
      p.vendorId ? `${p.vendorId}:${p.productId ?? '????'}` : '-',
      p.manufacturer ?? '-',
      p.serialNumber ?? '-',
      p.guess ?? (p.byId ? `by-id ${p.byId}` : '-'),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function portsOptions(cmd: Command): Command {
  return cmd.option('--json', 'print one JSON array');
}

export async function runPortsCommand(opts: { json?: boolean }): Promise<void> {
  const ports = await listPorts();
  process.stdout.write((opts.json ? JSON.stringify(ports) : formatPorts(ports)) + '\n');
}
