/**
 * pcapng blocks byte for byte, then a capture of KISS, UDP and LoRa links in one file read back
 * by Wireshark's tshark, a decoder nobody here wrote (see shared/peers/tshark.md).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BaseLink, type ReceivedFrame, type SendOptions } from '../src/link/link.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import { enhancedPacketBlock, interfaceDescriptionBlock, LinkType, PcapngFile, sectionHeaderBlock } from '../src/link/pcap.js';
import { CaptureLink, captureLinkType, ipv4UdpRecord, kissRecord, loraTapRecord } from '../src/link/capture.js';
import net from 'node:net';
import { kissTcpLink } from '../drivers/kiss-tcp.js';
import { encodeKissData } from '../firmware-protocol/kiss.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A link whose wire is an array: what it sends lands in `wire`; `receive` plays a frame in. */
class FakeLink extends BaseLink {
  readonly wire: { data: Uint8Array; options: SendOptions | undefined }[] = [];
  constructor(name: string, kind: string) {
    super(name, kind, 1200, new FixedRateAirtimeModel(), undefined, 16);
  }
  async open(): Promise<void> {
    this.setState('up');
  }
  async close(): Promise<void> {
    this.setState('closed');
  }
  protected pump(): void {
    for (let f = this.queue.shift(); f; f = this.queue.shift()) {
      this.wire.push(f);
      this.sent(f.data.length);
    }
  }
  receive(frame: ReceivedFrame): void {
    this.deliver(frame);
  }
}

function tshark(args: string[]): string {
  const r = spawnSync('tshark', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`tshark is needed for this test: apt-get install -y tshark (${r.error.message})`);
  if (r.status !== 0) throw new Error(`tshark exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgw-pcap-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

describe('pcapng blocks', () => {
  it('Section Header Block: magic, version 1.0, unknown section length', () => {
    expect(hex(sectionHeaderBlock())).toBe('0a0d0d0a' + '1c000000' + '4d3c2b1a' + '0100' + '0000' + 'ffffffffffffffff' + '1c000000');
    // shb_userappl 'ab' (code 4), padded to 4, then opt_endofopt
    expect(hex(sectionHeaderBlock('ab'))).toBe('0a0d0d0a' + '28000000' + '4d3c2b1a01000000ffffffffffffffff' + '0400020061620000' + '00000000' + '28000000');
  });

  it('Interface Description Block: link type, snaplen, if_name, if_tsresol = 6', () => {
    const idb = interfaceDescriptionBlock({ linkType: LinkType.AX25_KISS, name: 'k0', snaplen: 65535 });
    expect(hex(idb)).toBe(
      '01000000' + '28000000' + 'ca00' + '0000' + 'ffff0000' + '020002006b300000' + '0900010006000000' + '00000000' + '28000000',
    );
  });

  it('Enhanced Packet Block: µs timestamp split in two u32, padded data, epb_flags direction', () => {
    const epb = enhancedPacketBlock({ interfaceId: 1, timestampMs: 1000.5, data: Uint8Array.of(1, 2, 3), direction: 'out' });
    expect(hex(epb)).toBe(
      '06000000' + '30000000' + '01000000' + '00000000' + '34440f00' + '03000000' + '03000000' + '01020300' + '0200040002000000' + '00000000' + '30000000',
    );
    // 2023-11-14T22:13:20.123456Z in µs needs the high word; no options without a direction
    const big = enhancedPacketBlock({ interfaceId: 0, timestampMs: 1_700_000_000_123.456, data: new Uint8Array(4) });
    const v = new DataView(big.buffer);
    expect(v.getUint32(12, true) * 2 ** 32 + v.getUint32(16, true)).toBe(1_700_000_000_123_456);
    expect(big.length).toBe(32 + 4);
  });

  it('records: KISS type byte, IPv4 header checksum, LoRaTap v0 header', () => {
    expect(hex(kissRecord(3, Uint8Array.of(0xaa)))).toBe('30aa');
    expect(() => kissRecord(16, new Uint8Array(0))).toThrow(RangeError);
    expect([captureLinkType('kiss-tcp'), captureLinkType('udp'), captureLinkType('sim'), captureLinkType('slip-serial')]).toEqual([202, 228, 270, 148]);
    // RFC 1071: a header summed with its checksum in ones' complement gives 0xffff.
    const ip = ipv4UdpRecord({ address: '192.168.0.1', port: 269 }, { address: '192.168.0.255', port: 269 }, Uint8Array.of(0));
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += (ip[i]! << 8) | ip[i + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
    expect(hex(ip.subarray(20))).toBe('010d010d' + '0009' + '0000' + '00');
    const lt = loraTapRecord({ frequency: 869_525_000, bandwidth: 250_000, sf: 10, syncWord: 0x12 }, { rssiDbm: -97, snrDb: -7.25 }, Uint8Array.of(0xee));
    expect(hex(lt)).toBe('00' + '00' + '000f' + '33d3e608' + '02' + '0a' + '2a' + 'ff' + 'ff' + 'e3' + '12' + 'ee');
  });
});

describe('CaptureLink into one pcapng file, read back by tshark', () => {
  it('KISS, UDP and LoRa interfaces dissect as ax25_kiss, ip:udp(:packetbb) and loratap', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'links.pcapng');
      const file = new PcapngFile(path);
      const kissInner = Object.assign(new FakeLink('tnc0', 'kiss-serial'), { kissPort: 1 });
      const udpInner = Object.assign(new FakeLink('wifi0', 'udp'), {
        localEndpoint: () => ({ address: '10.0.0.1', port: 269 }),
        broadcastEndpoint: () => ({ address: '10.0.0.255', port: 269 }),
      });
      const loraInner = Object.assign(new FakeLink('lora0', 'lora-serial'), { loraParams: { frequency: 869_525_000, bandwidth: 250_000, sf: 10 } });
      const kiss = new CaptureLink(kissInner, file);
      const udp = new CaptureLink(udpInner, file);
      const lora = new CaptureLink(loraInner, file);
      const other = new CaptureLink(new FakeLink('slip0', 'slip-serial'), file);
      for (const l of [kiss, udp, lora, other]) await l.open();

      const received: ReceivedFrame[] = [];
      kiss.on('frame', (f) => received.push(f));
      expect(kiss.state).toBe('up');
      expect(kiss.name).toBe('tnc0');

      // AX.25 UI frame N0CALL > APRS, no layer 3, text 'A'
      const ax25 = Uint8Array.from([0x82, 0xa0, 0xa4, 0xa6, 0x40, 0x40, 0xe0, 0x9c, 0x60, 0x86, 0x82, 0x98, 0x98, 0x61, 0x03, 0xf0, 0x41]);
      const at = Date.now();
      kiss.send(ax25);
      kissInner.receive({ data: ax25, at });
      // RFC 5444 packet header only: version 0, flags 0x8 (sequence number), seq 42 / 43
      udp.send(Uint8Array.of(0x08, 0x00, 0x2a));
      udpInner.receive({ data: Uint8Array.of(0x08, 0x00, 0x2b), at, from: { address: '10.0.0.2', port: 269 } });
      udp.send(Uint8Array.of(0xde, 0xad), { to: { address: '10.0.0.3', port: 4269 } });
      lora.send(Uint8Array.of(1, 2, 3));
      loraInner.receive({ data: Uint8Array.of(4, 5, 6), at, rssiDbm: -97, snrDb: -7.25 });
      other.send(Uint8Array.of(9));

      expect(received).toHaveLength(1);
      expect(kissInner.wire).toHaveLength(1);
      expect(kiss.counters.framesOut).toBe(1);
      await file.close();
      expect(file.packets).toBe(8);
      expect(file.dropped).toBe(0);

      const fields = ['frame.interface_id', 'frame.interface_name', 'frame.encap_type', 'frame.packet_flags_direction', 'frame.protocols', 'ip.src', 'ip.dst', 'udp.dstport', 'packetbb.seqnr', 'ip.checksum.status', 'loratap.channel.frequency', 'loratap.channel.sf', 'loratap.rssi.packet', 'loratap.rssi.snr'];
      const out = tshark(['-r', path, '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])]);
      const rows = out.trim().split('\n').map((line) => Object.fromEntries(line.split('|').map((v, i) => [fields[i], v])));
      expect(rows).toHaveLength(8);
      const [kissOut, kissIn, udpOut, udpIn, udpUnicast, loraOut, loraIn, raw] = rows;
      expect(kissOut).toMatchObject({ 'frame.interface_id': '0', 'frame.interface_name': 'tnc0', 'frame.packet_flags_direction': '0x00000002' });
      expect(kissOut!['frame.protocols']).toMatch(/^ax25_kiss:ax25/);
      expect(kissIn).toMatchObject({ 'frame.interface_id': '0', 'frame.packet_flags_direction': '0x00000001' });
      expect(udpOut).toMatchObject({ 'frame.interface_id': '1', 'frame.protocols': 'ip:udp:packetbb', 'ip.src': '10.0.0.1', 'ip.dst': '10.0.0.255', 'packetbb.seqnr': '42', 'ip.checksum.status': '1' }); // 1: good (0 bad, 2 unverified)
      expect(udpIn).toMatchObject({ 'frame.protocols': 'ip:udp:packetbb', 'ip.src': '10.0.0.2', 'ip.dst': '10.0.0.1', 'packetbb.seqnr': '43', 'frame.packet_flags_direction': '0x00000001' });
      expect(udpUnicast).toMatchObject({ 'frame.protocols': 'ip:udp:data', 'ip.dst': '10.0.0.3', 'udp.dstport': '4269' });
      expect(loraOut).toMatchObject({ 'frame.interface_id': '2', 'frame.protocols': 'loratap:data', 'loratap.channel.frequency': '869525000', 'loratap.channel.sf': '10', 'loratap.rssi.packet': '255' });
      // −97 dBm + 139 = 42; SNR −7.25 dB × 4 = −29 = 0xe3 (227) in two's complement
      expect(loraIn).toMatchObject({ 'frame.protocols': 'loratap:data', 'loratap.rssi.packet': '42', 'loratap.rssi.snr': '227' });
      expect(raw).toMatchObject({ 'frame.interface_id': '3', 'frame.interface_name': 'slip0' });

      // The link types themselves, as Wireshark names them.
      const verbose = tshark(['-r', path, '-o', 'ip.check_checksum:TRUE', '-V']);
      for (const encap of ['AX.25 with KISS header', 'Raw IPv4', 'LoRaTap', 'USER 1']) expect(verbose).toContain(`Encapsulation type: ${encap}`);
      expect(verbose).toContain('[Header checksum status: Good]');
      expect(verbose).toContain('Packet: -97 dBm');
      // tshark 4.0's ax25_kiss.port field reads 0 whatever the byte; its summary line has the port.
      expect(verbose).toContain('KISS: Data frame, Port 1');
    });
  });

  it('a KISS TNC with a callsign: the capture holds the AX.25 UI frames that went on the air, both ways', async () => {
    await withTempDir(async (dir) => {
      // A stand-in TNC on TCP: it hands the host one UI frame from another station.
      const other = kissTcpLink({ name: 'other', port: 1, callsign: 'N0CALL-9' });
      const hostBytes: Buffer[] = [];
      const server = net.createServer((s) => {
        s.on('data', (b: Buffer) => hostBytes.push(b));
        s.write(encodeKissData(other.wrap(Uint8Array.of(0x51, 0x52, 0x53))));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const path = join(dir, 'ax25.pcapng');
      const file = new PcapngFile(path);
      const inner = kissTcpLink({ name: 'tnc0', host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, callsign: 'N0CALL-7' });
      const link = new CaptureLink(inner, file);
      const got = new Promise<ReceivedFrame>((r) => link.on('frame', r));
      await link.open();
      expect(Array.from((await got).data)).toEqual([0x51, 0x52, 0x53]); // the mesh frame, for the mesh
      link.send(Uint8Array.of(0x50, 0x01, 0x02));
      while (Buffer.concat(hostBytes).length === 0) await new Promise((r) => setTimeout(r, 10));
      await link.close();
      server.close();
      await file.close();
      const protocols = tshark(['-r', path, '-T', 'fields', '-e', 'frame.protocols']).trim().split('\n');
      expect(protocols).toEqual(['ax25_kiss:ax25:ax25_nol3:data', 'ax25_kiss:ax25:ax25_nol3:data']);
      // The summary lines name the stations: the other one's frame in, ours out, both to MESH.
      const summary = tshark(['-r', path]).trim().split('\n');
      expect(summary[0]).toMatch(/N0CALL-9 → MESH/);
      expect(summary[1]).toMatch(/N0CALL-7 → MESH/);
    });
  });

  it('cuts packets to the snaplen, keeps the original length, and reports a write error on close', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'snap.pcapng');
      const file = new PcapngFile(path);
      const id = file.addInterface({ linkType: LinkType.USER0, name: 'x', snaplen: 8 });
      file.writePacket({ interfaceId: id, timestampMs: 1, data: new Uint8Array(20) });
      expect(() => file.writePacket({ interfaceId: 1, timestampMs: 1, data: new Uint8Array(1) })).toThrow(RangeError);
      await file.close();
      expect(tshark(['-r', path, '-T', 'fields', '-e', 'frame.cap_len', '-e', 'frame.len']).trim()).toBe('8\t20');
    });
    const broken = new PcapngFile('/nonexistent-dir/x.pcapng');
    const id = broken.addInterface({ linkType: LinkType.USER0, name: 'x' });
    await expect(broken.close()).rejects.toThrow(/ENOENT/);
    expect(broken.writePacket({ interfaceId: id, timestampMs: 1, data: new Uint8Array(1) })).toBe(false);
  });

  it('a frame that cannot be recorded is counted, not thrown at the link', async () => {
    await withTempDir(async (dir) => {
      const file = new PcapngFile(join(dir, 'bad.pcapng'));
      const inner = new FakeLink('kiss9', 'kiss-tcp');
      const link = new CaptureLink(inner, file);
      const got: ReceivedFrame[] = [];
      const listener = (f: ReceivedFrame) => got.push(f);
      link.on('frame', listener);
      inner.receive({ data: Uint8Array.of(1), at: -5 });
      expect(got).toHaveLength(1);
      expect(link.recordErrors).toBe(1);
      link.off('frame', listener);
      inner.receive({ data: Uint8Array.of(2), at: 5 });
      expect(got).toHaveLength(1);
      await file.close();
      expect(file.packets).toBe(1);
    });
  });

  it('drops and counts packets beyond the pending-bytes cap; the file stays readable', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'capped.pcapng');
      const file = new PcapngFile(path, { maxPendingBytes: 512 });
      const id = file.addInterface({ linkType: LinkType.USER0, name: 'x' });
      for (let i = 0; i < 100; i++) file.writePacket({ interfaceId: id, timestampMs: 1000 + i, data: new Uint8Array(64) });
      expect(file.dropped).toBeGreaterThan(0);
      expect(file.packets + file.dropped).toBe(100);
      await file.close();
      expect(file.writePacket({ interfaceId: id, timestampMs: 0, data: new Uint8Array(1) })).toBe(false);
      const count = tshark(['-r', path, '-T', 'fields', '-e', 'frame.number']).trim().split('\n').length;
      expect(count).toBe(file.packets);
    });
  });
});
