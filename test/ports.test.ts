/**
 * `meshgw ports`: device guesses from USB ids, the device-node fallback on a directory tree made
 * here (by-id symlinks, tty nodes as plain files, a sysfs slice), and the built CLI.
 * (`npm test` builds dist/ before vitest runs.)
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatPorts, guessDevice, listDeviceNodes, listPorts } from '../src/cli/ports.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));

describe('guessDevice', () => {
  it('names the usual serial bridges and radio boards by VID:PID, then by vendor', () => {
    expect(guessDevice('0403', '6001')).toMatch(/FTDI FT232R/);
    expect(guessDevice('0403', '1234')).toMatch(/^FTDI/);
    expect(guessDevice('1a86', '7523')).toMatch(/CH340/);
    expect(guessDevice('1a86', '55d4')).toMatch(/CH9102/);
    expect(guessDevice('10c4', 'ea60')).toMatch(/CP210x/);
    expect(guessDevice('303a', '1001')).toMatch(/Espressif.*RNode-like.*ESP32-S3/);
    expect(guessDevice('239a', '8029')).toMatch(/nRF52.*RNode-like/);
    expect(guessDevice('2341', '0043')).toMatch(/Arduino/);
    expect(guessDevice('04d8', '000a')).toMatch(/Microchip/);
    expect(guessDevice('067b', '2303')).toMatch(/PL2303/);
  });

  it('accepts 0x prefixes, upper case and short ids; unknown or missing ids give null', () => {
    expect(guessDevice('0x10C4', '0xEA60')).toMatch(/CP210x/);
    expect(guessDevice('403', '6001')).toMatch(/FT232R/);
    expect(guessDevice('dead', 'beef')).toBeNull();
    expect(guessDevice(undefined, undefined)).toBeNull();
    expect(guessDevice('zz', '6001')).toBeNull();
  });
});

/** A root with /dev and /sys as a Linux machine with an FTDI TNC and an ESP32-S3 modem has them. */
function fakeRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'meshgw-ports-'));
  const file = (path: string, text = '') => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  const link = (path: string, target: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    symlinkSync(target, join(root, path));
  };
  for (const tty of ['ttyUSB0', 'ttyUSB10', 'ttyACM0', 'ttyS0', 'ttyS1', 'ttyS2', 'ttyAMA0', 'ttyAMA1', 'tty1']) file(`dev/${tty}`);
  // A Raspberry Pi: serial0 is the PL011 on the GPIO header (ttyAMA0), serial1 the mini UART
  // (ttyS0); ttyAMA1 has no device in sysfs; ttyS1 is a placeholder (type 0); ttyS2 is not in sysfs.
  link('dev/serial0', 'ttyAMA0');
  link('dev/serial1', 'ttyS0');
  mkdirSync(join(root, 'sys/devices/platform/soc/fe201000.serial/tty/ttyAMA0'), { recursive: true });
  link('sys/class/tty/ttyAMA0/device', '../../../devices/platform/soc/fe201000.serial');
  mkdirSync(join(root, 'sys/devices/platform/serial8250/tty/ttyS0'), { recursive: true });
  link('sys/class/tty/ttyS0/device', '../../../devices/platform/serial8250');
  file('sys/class/tty/ttyS0/type', '4\n');
  link('sys/class/tty/ttyS1/device', '../../../devices/platform/serial8250');
  file('sys/class/tty/ttyS1/type', '0\n');
  link('dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0', '../../ttyUSB0');
  link('dev/serial/by-id/usb-Espressif_USB_JTAG_serial_debug_unit_F4:12:FA-if00', '../../ttyACM0');
  link('dev/serial/by-id/usb-gone-if00-port0', '../../ttyUSB9'); // dangling: unplugged
  // ttyUSB: class/tty/NAME/device is the usb-serial port, two levels below the USB device
  file('sys/devices/usb1/1-1/idVendor', '0403\n');
  file('sys/devices/usb1/1-1/idProduct', '6001\n');
  file('sys/devices/usb1/1-1/manufacturer', 'FTDI\n');
  file('sys/devices/usb1/1-1/serial', 'A10K1234\n');
  mkdirSync(join(root, 'sys/devices/usb1/1-1/1-1:1.0/ttyUSB0'), { recursive: true });
  link('sys/class/tty/ttyUSB0/device', '../../../devices/usb1/1-1/1-1:1.0/ttyUSB0');
  // ttyACM: device is the USB interface, one level below the USB device
  file('sys/devices/usb1/1-2/idVendor', '303a\n');
  file('sys/devices/usb1/1-2/idProduct', '1001\n');
  file('sys/devices/usb1/1-2/manufacturer', 'Espressif\n');
  mkdirSync(join(root, 'sys/devices/usb1/1-2/1-2:1.0'), { recursive: true });
  link('sys/class/tty/ttyACM0/device', '../../../devices/usb1/1-2/1-2:1.0');
  return root;
}

describe('listDeviceNodes (the fallback)', () => {
  it('lists by-id links resolved, ttyUSB* and ttyACM*, with USB ids from sysfs', async () => {
    const root = fakeRoot();
    try {
      expect((await listDeviceNodes(root)).filter((p) => /tty(USB|ACM)/.test(p.path))).toEqual([
        {
          path: '/dev/ttyACM0',
          manufacturer: 'Espressif',
          vendorId: '303a',
          productId: '1001',
          serialNumber: null,
          byId: 'usb-Espressif_USB_JTAG_serial_debug_unit_F4:12:FA-if00',
          guess: expect.stringMatching(/RNode-like/),
        },
        {
          path: '/dev/ttyUSB0',
          manufacturer: 'FTDI',
          vendorId: '0403',
          productId: '6001',
          serialNumber: 'A10K1234',
          byId: 'usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0',
          guess: expect.stringMatching(/FT232R/),
        },
        { path: '/dev/ttyUSB10', manufacturer: null, vendorId: null, productId: null, serialNumber: null, byId: null, guess: null },
      ]);
      // The on-board UARTs with a device behind them, and the Pi's aliases for them.
      const uarts = (await listDeviceNodes(root)).filter((p) => /tty(AMA|S)/.test(p.path));
      expect(uarts.map((p) => [p.path, p.alias, p.guess])).toEqual([
        ['/dev/ttyAMA0', '/dev/serial0', expect.stringMatching(/on-board UART/)],
        ['/dev/ttyS0', '/dev/serial1', expect.stringMatching(/on-board UART/)],
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('finds nothing in an empty root', async () => {
    const root = mkdtempSync(join(tmpdir(), 'meshgw-ports-'));
    try {
      expect(await listDeviceNodes(root)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('listPorts', () => {
  it("falls back to the device nodes when serialport's listing fails, and says so", async () => {
    const root = fakeRoot();
    try {
      const warnings: string[] = [];
      const ports = await listPorts({ list: () => Promise.reject(new Error('spawn udevadm ENOENT')), root, warn: (l) => warnings.push(l) });
      expect(ports.map((p) => p.path)).toEqual(['/dev/ttyACM0', '/dev/ttyAMA0', '/dev/ttyS0', '/dev/ttyUSB0', '/dev/ttyUSB10']);
      expect(warnings).toEqual(["serialport's listing failed (spawn udevadm ENOENT); listing device nodes instead"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("uses serialport's listing when it has ports, with the guess added", async () => {
    const warnings: string[] = [];
    const ports = await listPorts({
      list: async () => [{ path: '/dev/ttyUSB3', manufacturer: 'Silicon Labs', vendorId: '10c4', productId: 'ea60', serialNumber: '0001', pnpId: 'usb-Silicon_Labs_CP2102-if00-port0' }],
      warn: (l) => warnings.push(l),
    });
    expect(ports).toEqual([
      {
        path: '/dev/ttyUSB3',
        manufacturer: 'Silicon Labs',
        vendorId: '10c4',
        productId: 'ea60',
        serialNumber: '0001',
        byId: 'usb-Silicon_Labs_CP2102-if00-port0',
        guess: expect.stringMatching(/CP210x/),
      },
    ]);
    expect(warnings).toEqual([]);
    expect(formatPorts(ports)).toMatch(/^PATH +VID:PID +MANUFACTURER +SERIAL +DEVICE\n\/dev\/ttyUSB3 +10c4:ea60 +Silicon Labs +0001 +Silicon Labs CP210x/);
    expect(formatPorts([])).toBe('no serial ports found');
  });
});

describe('meshgw ports (built CLI)', () => {
  it('--json prints a JSON array and exits 0, even with no ports', () => {
    const r = spawnSync(process.execPath, [bin, 'ports', '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const ports = JSON.parse(r.stdout) as unknown;
    expect(Array.isArray(ports)).toBe(true);
    for (const p of ports as { path: unknown }[]) expect(typeof p.path).toBe('string');
  });

  it('prints a table, or "no serial ports found", and exits 0', () => {
    const r = spawnSync(process.execPath, [bin, 'ports'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^(no serial ports found|PATH +VID:PID)/);
  });
});
