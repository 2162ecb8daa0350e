/**
 * contrib/: the systemd unit passes `systemd-analyze verify` and carries the sandbox it is
 * meant to; the udev rules parse as udev key/operator/value lists and name rnode0 and tnc0.
 *
 * `systemd-analyze` (package systemd) must be installed: without it this test fails rather than
 * skips, so that CI cannot go green without having verified the unit.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const unitPath = fileURLToPath(new URL('../contrib/meshgw.service', import.meta.url));
const rulesPath = fileURLToPath(new URL('../contrib/99-meshgw.rules', import.meta.url));
const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));
const unitText = readFileSync(unitPath, 'utf8');

const EXEC_START = '/usr/bin/meshgw --config /etc/meshgw/meshgw.yaml --state-dir /var/lib/meshgw --key /var/lib/meshgw/identity.json';

/** The unit's directives as [section, key, value], in order (comments and blank lines dropped). */
function parseUnit(text: string): Array<[string, string, string]> {
  const out: Array<[string, string, string]> = [];
  let section = '';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      return;
    }
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!m) throw new Error(`meshgw.service:${i + 1}: not KEY=VALUE: ${raw}`);
    if (section === '') throw new Error(`meshgw.service:${i + 1}: directive outside a section`);
    out.push([section, m[1]!, m[2]!]);
  });
  return out;
}

function values(key: string, section = 'Service'): string[] {
  return parseUnit(unitText)
    .filter(([s, k]) => s === section && k === key)
    .map(([, , v]) => v);
}

/** `systemd-analyze verify` on a copy of the unit named meshgw.service; the copy's path too. */
function verify(text: string): { code: number | null; stderr: string; stdout: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'meshgw-unit-'));
  const path = join(dir, 'meshgw.service');
  try {
    writeFileSync(path, text);
    const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
    if (r.error) {
      if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error('install systemd (apt-get install -y systemd) for systemd-analyze');
      }
      throw r.error;
    }
    return { code: r.status, stderr: r.stderr, stdout: r.stdout, path };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The unit with ExecStart's /usr/bin/meshgw (not installed here; verify checks that the binary
 * exists) replaced by this Node and the built bin, the arguments kept.
 */
function runnableCopy(text: string): string {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('ExecStart='));
  expect(at, 'an ExecStart= line').toBeGreaterThanOrEqual(0);
  expect(lines[at]!.startsWith('ExecStart=/usr/bin/meshgw ')).toBe(true);
  const quote = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  lines[at] = `ExecStart=${quote(process.execPath)} ${quote(bin)} ${lines[at]!.slice('ExecStart=/usr/bin/meshgw '.length)}`;
  return lines.join('\n');
}

/**
 * stderr lines about the unit file itself (by name or by its path). Nothing is filtered out: on
 * systemd 252 (Debian 12) a unit that verifies cleanly prints nothing at all, and the missing
 * user `meshgw` is not reported (User= is only resolved when the service starts). Lines about
 * other units on the host (their own warnings) are not ours and are ignored.
 */
function linesAboutUnit(stderr: string, path: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => l.includes(path) || l.includes('meshgw.service'));
}

describe('contrib/meshgw.service', () => {
  it('passes systemd-analyze verify with no complaint about the unit', () => {
    const r = verify(runnableCopy(unitText));
    expect(linesAboutUnit(r.stderr, r.path)).toEqual([]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('the verify check does catch a bad line (so a clean result means something)', () => {
    const broken = runnableCopy(unitText)
      .replace('\nLockPersonality=yes\n', '\nLockPersonaliti=yes\n')
      .replace('\nDeviceAllow=char-ttyS rw\n', '\nDeviceAllow=char-ttyS rwx\n');
    const r = verify(broken);
    const about = linesAboutUnit(r.stderr, r.path);
    expect(about.some((l) => l.includes('LockPersonaliti'))).toBe(true);
    expect(about.some((l) => l.includes('rwx'))).toBe(true);
  });

  it('runs the installed meshgw with the config file and its state in /var/lib/meshgw', () => {
    expect(values('ExecStart')).toEqual([EXEC_START]);
    expect(values('StateDirectory')).toEqual(['meshgw']);
    expect(values('User')).toEqual(['meshgw']);
    expect(values('SupplementaryGroups')).toEqual(['dialout']);
    expect(values('Restart')).toEqual(['on-failure']);
    expect(values('RestartSec')).toEqual(['5']);
    expect(values('KillSignal')[0]).toMatch(/^SIG(INT|TERM)$/);
    expect(Number(values('TimeoutStopSec')[0])).toBeGreaterThan(5);
    expect(values('After', 'Unit')).toContain('network-online.target');
    expect(values('Wants', 'Unit')).toContain('network-online.target');
    expect(values('WantedBy', 'Install')).toEqual(['multi-user.target']);
  });

  it('carries the hardening settings', () => {
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6 AF_NETLINK',
      LockPersonality: 'yes',
      DevicePolicy: 'closed',
      ReadWritePaths: '/var/lib/meshgw',
    };
    for (const [key, value] of Object.entries(expected)) expect(values(key), key).toEqual([value]);
    // Node's JIT needs writable+executable memory: the daemon would not start with it.
    expect(values('MemoryDenyWriteExecute')).toEqual([]);
    // PrivateDevices= would hide the serial ports; SystemCallArchitectures=native would kill a
    // 32-bit Node on a 64-bit Raspberry Pi kernel.
    expect(values('PrivateDevices')).toEqual([]);
    expect(values('SystemCallArchitectures')).toEqual([]);
    const devices = values('DeviceAllow');
    for (const group of ['ttyUSB', 'ttyACM', 'ttyAMA', 'ttyS']) expect(devices).toContain(`char-${group} rw`);
  });

  it('has a comment above every directive', () => {
    const lines = unitText.split('\n');
    lines.forEach((line, i) => {
      if (/^[A-Za-z]+=/.test(line)) expect(lines[i - 1], `line ${i + 1}: ${line}`).toMatch(/^#/);
    });
  });
});

/** One udev rule line as [key, operator, value] triples; throws on anything else. */
function parseRule(line: string, where: string): Array<[string, string, string]> {
  const pair = /\s*([A-Z_]+(?:\{[A-Za-z0-9_]+\})?)(==|!=|\+=|-=|:=|=)"([^"]*)"\s*(,|$)/y;
  const out: Array<[string, string, string]> = [];
  pair.lastIndex = 0;
  for (;;) {
    const at = pair.lastIndex;
    const m = pair.exec(line);
    if (!m) throw new Error(`${where}: not KEY==value / KEY=value pairs at column ${at + 1}: ${line}`);
    out.push([m[1]!, m[2]!, m[3]!]);
    if (m[4] === '') return out; // the end of the line
  }
}

describe('contrib/99-meshgw.rules', () => {
  const rules = readFileSync(rulesPath, 'utf8')
    .split('\n')
    .map((line, i) => ({ line: line.trim(), where: `99-meshgw.rules:${i + 1}` }))
    .filter(({ line }) => line !== '' && !line.startsWith('#'))
    .map(({ line, where }) => ({ where, pairs: parseRule(line, where) }));

  it('every rule line parses, matches with == and assigns with = or +=', () => {
    expect(rules.length).toBeGreaterThanOrEqual(3);
    const matchKeys = /^(SUBSYSTEM|KERNEL|ACTION|ATTRS\{\w+\}|ENV\{\w+\})$/;
    const assignKeys = /^(SYMLINK|GROUP|MODE|OWNER|ENV\{\w+\})$/;
    for (const { where, pairs } of rules) {
      for (const [key, op] of pairs) {
        if (op === '==' || op === '!=') expect(key, where).toMatch(matchKeys);
        else expect(key, where).toMatch(assignKeys);
        if (key === 'SYMLINK') expect(op, where).toBe('+=');
      }
      expect(pairs.some(([k, op, v]) => k === 'SUBSYSTEM' && op === '==' && v === 'tty'), where).toBe(true);
      const vendor = pairs.find(([k, op]) => k === 'ATTRS{idVendor}' && op === '==');
      const product = pairs.find(([k, op]) => k === 'ATTRS{idProduct}' && op === '==');
      expect(vendor?.[2], where).toMatch(/^[0-9a-f]{4}$/);
      expect(product?.[2], where).toMatch(/^[0-9a-f]{4}$/);
      expect(pairs.find(([k]) => k === 'GROUP'), where).toEqual(['GROUP', '=', 'dialout']);
      expect(pairs.find(([k]) => k === 'MODE'), where).toEqual(['MODE', '=', '0660']);
    }
  });

  it('names /dev/rnode0 (CP2102, CH340) and /dev/tnc0 (FTDI)', () => {
    const named = (name: string): string[] =>
      rules
        .filter(({ pairs }) => pairs.some(([k, op, v]) => k === 'SYMLINK' && op === '+=' && v === name))
        .map(({ pairs }) => `${pairs.find(([k]) => k === 'ATTRS{idVendor}')![2]}:${pairs.find(([k]) => k === 'ATTRS{idProduct}')![2]}`);
    expect(named('rnode0').sort()).toEqual(['10c4:ea60', '1a86:7523']);
    expect(named('tnc0')).toEqual(['0403:6001']);
  });

  it('the parser refuses what udev would not take', () => {
    expect(() => parseRule('SUBSYSTEM=="tty" ATTRS{idVendor}=="0403"', 'x')).toThrow(/column/);
    expect(() => parseRule('SUBSYSTEM==tty', 'x')).toThrow(/column/);
    expect(() => parseRule('SUBSYSTEM=="tty",', 'x')).toThrow(/column/);
  });
});
