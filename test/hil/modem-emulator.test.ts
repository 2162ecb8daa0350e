/**
 * HIL: the modem emulator on one end of a real socat pty pair, a host on the other end through
 * the real serialport binding, and emulators sharing a simulated medium over loopback UDP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startModemEmulator, type RunningModemEmulator } from '../../firmware-protocol/emulator/runner.js';
import { DETECT_REQUEST, DETECT_RESPONSE, QUERY_U32, QUERY_U8, RadioState } from '../../firmware-protocol/lora-modem.js';
import { encodeLoraMessage, decodeLoraFrame } from '../../firmware-protocol/lora-modem.js';
import { KissDecoder } from '../../firmware-protocol/kiss.js';
import { openPtyPair, type PtyPair } from './pty.js';
import { TestHost } from './modem-host.js';

const EU = { frequency: 869_525_000, bandwidth: 125_000, sf: 7, cr: 5, txpower: 14 };
const TIME_SCALE = 20;
const medium = { host: '127.0.0.1', port: 20_000 + Math.floor(Math.random() * 20_000) };

interface Node {
  pty: PtyPair;
  emulator: RunningModemEmulator;
  host: TestHost;
}

async function startNode(name: string): Promise<Node> {
  const pty = await openPtyPair(name);
  const emulator = await startModemEmulator({ serial: pty.modem, medium, timeScale: TIME_SCALE, rssiDbm: -97, snrDb: -7.25 });
  const host = await TestHost.open(pty.host);
  return { pty, emulator, host };
}

async function configure(host: TestHost, settings: typeof EU): Promise<void> {
  expect(await host.set('frequency', settings.frequency)).toBe(settings.frequency);
  expect(await host.set('bandwidth', settings.bandwidth)).toBe(settings.bandwidth);
  expect(await host.set('txpower', settings.txpower)).toBe(settings.txpower);
  expect(await host.set('sf', settings.sf)).toBe(settings.sf);
  expect(await host.set('cr', settings.cr)).toBe(settings.cr);
  expect(await host.set('radio-state', RadioState.ON)).toBe(RadioState.ON);
}

describe('modem emulator over a real pty', () => {
  const nodes: Node[] = [];
  let a: Node, b: Node, c: Node;

  beforeAll(async () => {
    a = await startNode('a');
    b = await startNode('b');
    c = await startNode('c');
    nodes.push(a, b, c);
  });

  afterAll(async () => {
    for (const n of nodes) {
      await n.host.close();
      await n.emulator.close();
      n.pty.close();
    }
  });

  it('answers DETECT with 0x46', async () => {
    a.host.send({ command: 'detect', value: DETECT_REQUEST });
    expect((await a.host.next('detect')).value).toBe(DETECT_RESPONSE);
  });

  it('reports its firmware version, platform and MCU', async () => {
    a.host.send({ command: 'query', target: 'fw-version' });
    const fw = await a.host.next('fw-version');
    expect([fw.major, fw.minor]).toEqual([1, 74]);
    a.host.send({ command: 'platform', value: 0 });
    expect((await a.host.next('platform')).value).toBe(0x80);
  });

  it('keeps the radio off until it is configured, and says so', async () => {
    expect(await a.host.set('radio-state', RadioState.ON)).toBe(RadioState.OFF);
  });

  it('answers a READY query with 01 while its queue has room', async () => {
    a.host.send({ command: 'ready', value: 0 });
    expect((await a.host.next('ready')).value).toBe(1);
  });

  it('sets and reads back frequency, bandwidth, SF, CR and TX power', async () => {
    await configure(a.host, EU);
    // Query forms return what is set.
    expect(await a.host.set('frequency', QUERY_U32)).toBe(EU.frequency);
    expect(await a.host.set('bandwidth', QUERY_U32)).toBe(EU.bandwidth);
    expect(await a.host.set('sf', QUERY_U8)).toBe(EU.sf);
    expect(await a.host.set('cr', QUERY_U8)).toBe(EU.cr);
    expect(await a.host.set('txpower', QUERY_U8)).toBe(EU.txpower);
    expect(await a.host.set('radio-state', QUERY_U8)).toBe(RadioState.ON);
    // An impossible value is refused: the echo keeps the old one, so the host sees the mismatch.
    expect(await a.host.set('sf', 13)).toBe(EU.sf);
    expect(await a.host.set('bandwidth', 100_000)).toBe(EU.bandwidth);
  });

  it('carries a DATA frame to a second emulator, preceded by RSSI and SNR', async () => {
    await configure(b.host, EU);
    await configure(c.host, { ...EU, frequency: 868_100_000 });
    const payload = Uint8Array.from([0x01, 0xc0, 0xdb, 0x02, ...Array.from({ length: 40 }, (_, i) => i)]);
    a.host.send({ command: 'data', data: payload });

    const data = await b.host.next('data');
    expect([...data.data]).toEqual([...payload]);
    expect(b.emulator.modem.counters.rxFrames).toBe(1);
    expect((await b.host.next('stat-rssi')).dbm).toBe(-97);
    expect((await b.host.next('stat-snr')).db).toBe(-7.25);
    // The sender gets READY when its transmission ends.
    expect((await a.host.next('ready')).value).toBe(1);
    expect(a.emulator.modem.counters.txFrames).toBe(1);
  });

  it('sends the telemetry before the DATA frame on the serial line', async () => {
    b.host.received.length = 0;
    a.host.send({ command: 'data', data: Uint8Array.of(9, 8, 7) });
    await b.host.next('data');
    // What arrived before the data frame, in arrival order:
    expect(b.host.received.map((m) => m.command).slice(0, 2)).toEqual(['stat-rssi', 'stat-snr']);
    await a.host.next('ready');
  });

  it('does not deliver to an emulator on another frequency', async () => {
    // Both frames above went out while c listened on 868.1 MHz.
    expect(c.emulator.modem.counters.offChannel).toBeGreaterThanOrEqual(2);
    expect(c.emulator.modem.counters.rxFrames).toBe(0);
    expect(c.host.received.filter((m) => m.command === 'data')).toEqual([]);
  });

  it('as Reticulum\'s RNodeInterface uses it: a burst of packets up to 508 bytes, written without waiting for READY, arrives whole and draws no ERROR', async () => {
    const d = await startNode('d');
    const e = await startNode('e');
    nodes.push(d, e);
    // RNodeInterface's detection: DETECT, FW_VERSION, PLATFORM and MCU in one write, sharing FENDs.
    d.host.write(Uint8Array.of(0xc0, 0x08, DETECT_REQUEST, 0xc0, 0x50, 0x00, 0xc0, 0x48, 0x00, 0xc0, 0x49, 0x00, 0xc0));
    expect(await d.host.next('detect')).toEqual({ command: 'detect', value: DETECT_RESPONSE });
    await d.host.next('fw-version');
    await d.host.next('mcu');
    await configure(d.host, EU);
    await configure(e.host, EU);
    // Each 508 is followed by a frame that is not split (see the 508-byte test in
    // test/emulator-modem.test.ts for what a split one would risk).
    const sizes = [508, 40, 300, 255, 254, 507, 400, 508, 100, 350, 1, 480];
    const packets = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (i * 31 + j) & 0xff));
    for (const p of packets) d.host.send({ command: 'data', data: p });
    const got: Uint8Array[] = [];
    while (got.length < packets.length) got.push((await e.host.next('data', 15_000)).data);
    expect(got.map((g) => Buffer.from(g).toString('hex'))).toEqual(packets.map((p) => Buffer.from(p).toString('hex')));
    expect(d.host.received.filter((m) => m.command === 'error')).toEqual([]);
    // The modem told its host its timing when the radio came on, as RNode does.
    expect(d.host.received.some((m) => m.command === 'stat-phyprm' && m.preambleSymbols === 24)).toBe(true);
    expect(d.emulator.modem.counters).toMatchObject({ queueFull: 0, oversize: 0 });
  }, 60_000);
});

describe('meshgw modem-emulator on stdio', () => {
  it('answers DETECT and FW_VERSION through the CLI', async () => {
    const bin = fileURLToPath(new URL('../../dist/bin/meshgw.js', import.meta.url));
    const child = spawn(process.execPath, [bin, 'modem-emulator', '--serial', '-', '--medium', `127.0.0.1:${medium.port + 100}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const decoder = new KissDecoder();
    const seen: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no replies from the CLI emulator; saw ${seen.join(',')}`)), 10_000);
      child.stdout.on('data', (b: Buffer) => {
        for (const e of decoder.push(new Uint8Array(b))) {
          if ('error' in e) continue;
          const r = decodeLoraFrame(e.frame);
          if ('message' in r) {
            const m = r.message;
            seen.push(m.command === 'detect' ? `detect:${m.value.toString(16)}` : m.command);
          }
        }
        if (seen.includes('detect:46') && seen.includes('fw-version')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`emulator exited with ${code}`)));
    });
    child.stdin.write(encodeLoraMessage({ command: 'detect', value: DETECT_REQUEST }));
    child.stdin.write(encodeLoraMessage({ command: 'query', target: 'fw-version' }));
    try {
      await done;
    } finally {
      child.kill();
    }
    expect(seen).toContain('detect:46');
  });

});

