/**
 * MSP goodput over lossy first hops, in virtual time (bench/msp-sim.ts): meshgw's MspConnection
 * without and with FEC, beside the original scheme (window of 4 packets, fixed 1.5 s
 * retransmission timer per packet, cumulative ACKs only) in the same simulator, on three links:
 * AFSK 1200 (half-duplex, one channel), LoRa SF9/125 kHz CR4/5 under the EU868 1 % duty cycle
 * (half-duplex, one channel, 1 % per transmitter over a sliding hour) and a 10 Mbit/s, 5 ms
 * Wi-Fi-like link (full duplex). Seeds are fixed: the same numbers each run.
 *
 * capacity = (1 − loss) × payload rate, payload rate = (maxBytes − 8) bytes per (airtime of a full
 * mesh frame ÷ duty fraction): every frame full of fragment, each lost one sent again once, no
 * ACK costing anything. goodput = message bytes delivered in order ÷ virtual time from the first
 * send to the delivery of the last byte.
 *
 * `node dist/bench/msp.js` prints the table alone; `npm run bench` prints it with the rest.
 */
import { pathToFileURL } from 'node:url';
import { MspConnection, pathEstimateFromAirtime, type MspConnectionOptions, type MspFecMode, type MspPathEstimate } from '../src/msp/connection.js';
import { DATA_OVERHEAD, decodePacket, encodePacket } from '../src/msp/wire.js';
import { Ax25AirtimeModel } from '../src/link/airtime/afsk.js';
import { loraAirtime } from '../src/link/airtime/lora.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import { bandRules } from '../src/link/airtime/regions.js';
import { MESH_OVERHEAD, maxBytesOf, runSim, type SimEnd, type SimLink } from './msp-sim.js';

const LOSSES = [0, 0.05, 0.1, 0.2, 0.3];
const CONN_ID = 0x4d535031;

interface LinkCase {
  link: SimLink;
  /** Bytes transferred per run. */
  total: number;
  /** Fragments per message (messages are whole fragments: partial fragments are a framing matter, not the protocol's). */
  fragmentsPerMessage: number;
  note: string;
}

function links(): LinkCase[] {
  const afsk = new Ax25AirtimeModel({ modem: 'afsk1200' });
  const eu = bandRules('eu868', 868_100_000, 125_000).dutyCycle!;
  const lora = { sf: 9, bandwidth: 125_000, cr: 5 };
  const wifi = new FixedRateAirtimeModel({ bitRate: 10_000_000, maxBytes: 1200 });
  return [
    {
      link: { name: 'AFSK 1200', mtu: 256, airtimeMs: (b) => afsk.airtimeMs(b), propagationMs: 1, dutyFraction: 1, dutyWindowMs: 1, halfDuplex: true },
      total: 96 * 1024,
      fragmentsPerMessage: 4,
      note: 'mesh frame ≤ 256 B (maxBytes 224), TXDELAY 300 ms + TXTAIL 100 ms per frame, 1 ms, half-duplex',
    },
    {
      link: { name: 'LoRa SF9 1%', mtu: 255, airtimeMs: (b) => loraAirtime(lora, b).airtimeMs, propagationMs: 1, dutyFraction: eu.fraction, dutyWindowMs: eu.windowMs, halfDuplex: true },
      total: 40 * 1024,
      fragmentsPerMessage: 4,
      note: 'SF9/125 kHz CR4/5, mesh frame ≤ 255 B (maxBytes 223), EU868 868.1 MHz 1 %/h per transmitter, 1 ms, half-duplex',
    },
    {
      link: { name: 'Wi-Fi 10M', mtu: 1200, airtimeMs: (b) => wifi.airtimeMs(b), propagationMs: 5, dutyFraction: 1, dutyWindowMs: 1, halfDuplex: false },
      total: 4 * 1024 * 1024,
      fragmentsPerMessage: 8,
      note: '10 Mbit/s, mesh frame ≤ 1200 B (maxBytes 1168), 5 ms one way, full duplex',
    },
  ];
}

/** Byte `i` of the transferred stream. */
function streamByte(i: number): number {
  return (i * 31 + (i >>> 9)) & 0xff;
}

interface Outcome {
  goodput: number;
  delivered: number;
  wrong: number;
  mspBytes: number;
  payloadSent: number;
  dataPackets: number;
  ackPackets: number;
  repairs: number;
  recovered: number;
  retransmissions: number;
  virtualMs: number;
  timedOut: boolean;
  error: string | undefined;
}

interface Transfer {
  sender: SimEnd;
  receiver: SimEnd;
  /** Queue more of the stream when there is room; returns true if it queued anything. */
  feed(now: number): boolean;
  /** Messages delivered since the last call. */
  take(): Uint8Array[];
  retransmissions(): number;
  recovered(): number;
  error(): string | undefined;
}

function pathOf(link: SimLink): MspPathEstimate {
  return pathEstimateFromAirtime((n) => link.airtimeMs(n + MESH_OVERHEAD), maxBytesOf(link), {
    propagationMs: link.propagationMs,
    dutyFraction: link.dutyFraction,
    halfDuplex: link.halfDuplex,
  });
}

function meshgwTransfer(lc: LinkCase, fec: MspFecMode, withPath = true): Transfer {
  const { link } = lc;
  const maxBytes = maxBytesOf(link);
  const options: MspConnectionOptions = { fec };
  if (withPath) options.path = pathOf(link);
  const a = new MspConnection({ role: 'initiator', connectionId: CONN_ID, now: 0, options });
  const b = new MspConnection({ role: 'responder', connectionId: CONN_ID, now: 0, options });
  const msgBytes = lc.fragmentsPerMessage * (maxBytes - DATA_OVERHEAD);
  let queued = 0;
  const end = (c: MspConnection): SimEnd => ({
    poll: (now, max) => c.pollTransmit(now, max),
    receive: (bytes, now) => c.handlePacket(bytes, now),
    deadline: () => c.nextDeadline(),
  });
  return {
    sender: end(a),
    receiver: end(b),
    feed: (now) => {
      let any = false;
      while (queued < lc.total && a.queuedBytes + msgBytes <= 65_536) {
        const n = Math.min(msgBytes, lc.total - queued);
        const m = new Uint8Array(n);
        for (let i = 0; i < n; i++) m[i] = streamByte(queued + i);
        if (!a.send(m, now).ok) break;
        queued += n;
        any = true;
      }
      return any;
    },
    take: () => b.takeReceived(),
    retransmissions: () => a.stats.retransmissions,
    recovered: () => b.stats.repairsRecovered,
    error: () => (a.error ?? b.error) === undefined ? undefined : `${a.error ?? ''}/${b.error ?? ''}`,
  };
}

/**
 * The original scheme: a window of 4 packets, a fixed 1.5 s timer per packet (on expiry that
 * packet alone is sent again: selective repeat by timer), the receiver buffers within the window
 * and answers every DATA packet at once with a cumulative ACK (no ranges, no delay). Same framing
 * as MSP (8-byte DATA header, 8-byte ACK packet), same fragment sizes.
 */
function baselineTransfer(lc: LinkCase): Transfer {
  const maxBytes = maxBytesOf(lc.link);
  const frag = maxBytes - DATA_OVERHEAD;
  const msgBytes = lc.fragmentsPerMessage * frag;
  const WINDOW = 4;
  const RTO = 1500;
  let next = 0;
  let una = 0;
  let offset = 0;
  let retx = 0;
  const inflight = new Map<number, { bytes: Uint8Array; sentAt: number }>();
  const fragmentAt = (off: number): { data: Uint8Array; end: boolean } => {
    const n = Math.min(frag, lc.total - off, msgBytes - (off % msgBytes));
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = streamByte(off + i);
    return { data, end: (off + n) % msgBytes === 0 || off + n === lc.total };
  };
  const sender: SimEnd = {
    poll: (now) => {
      let oldest: number | undefined;
      for (const [n, p] of inflight) if (p.sentAt + RTO <= now && (oldest === undefined || n < oldest)) oldest = n;
      if (oldest !== undefined) {
        const p = inflight.get(oldest)!;
        p.sentAt = now;
        retx++;
        return p.bytes;
      }
      if (next - una >= WINDOW || offset >= lc.total) return undefined;
      const f = fragmentAt(offset);
      offset += f.data.length;
      const bytes = encodePacket({ connectionId: CONN_ID, open: false, fromResponder: false, packetNumber: next & 0xffff, frames: [{ type: 'data', end: f.end, fin: false, data: f.data }] });
      inflight.set(next++, { bytes, sentAt: now });
      return bytes;
    },
    receive: (bytes) => {
      const r = decodePacket(bytes);
      if (!r.ok) return;
      for (const f of r.packet.frames) {
        if (f.type !== 'ack') continue;
        const cum = una + ((f.cumulative - una) & 0xffff);
        if (cum > next) continue;
        for (; una < cum; una++) inflight.delete(una);
      }
    },
    deadline: () => {
      let d: number | undefined;
      for (const p of inflight.values()) if (d === undefined || p.sentAt + RTO < d) d = p.sentAt + RTO;
      return d;
    },
  };
  let rcvNext = 0;
  let ackDue = false;
  const buffer = new Map<number, { data: Uint8Array; end: boolean }>();
  let partial: Uint8Array[] = [];
  const ready: Uint8Array[] = [];
  const receiver: SimEnd = {
    poll: () => {
      if (!ackDue) return undefined;
      ackDue = false;
      return encodePacket({ connectionId: CONN_ID, open: false, fromResponder: true, frames: [{ type: 'ack', cumulative: rcvNext & 0xffff, ranges: [] }] });
    },
    receive: (bytes) => {
      const r = decodePacket(bytes);
      if (!r.ok || r.packet.packetNumber === undefined) return;
      const f = r.packet.frames.at(-1)!;
      if (f.type !== 'data') return;
      const n = rcvNext + ((r.packet.packetNumber - rcvNext) & 0xffff);
      ackDue = true;
      if (n >= rcvNext + WINDOW || buffer.has(n) || n < rcvNext) return;
      buffer.set(n, { data: f.data.slice(), end: f.end });
      while (buffer.has(rcvNext)) {
        const p = buffer.get(rcvNext)!;
        buffer.delete(rcvNext++);
        partial.push(p.data);
        if (p.end) {
          ready.push(Buffer.concat(partial));
          partial = [];
        }
      }
    },
    deadline: () => undefined,
  };
  return {
    sender,
    receiver,
    feed: () => false,
    take: () => ready.splice(0, ready.length),
    retransmissions: () => retx,
    recovered: () => 0,
    error: () => undefined,
  };
}

type Variant = 'meshgw' | 'meshgw+FEC' | 'baseline' | 'fec auto' | 'no path';

function measure(lc: LinkCase, loss: number, variant: Variant, seed: number): Outcome {
  const t =
    variant === 'baseline' ? baselineTransfer(lc)
    : variant === 'no path' ? meshgwTransfer(lc, 'off', false)
    : meshgwTransfer(lc, variant === 'meshgw' ? 'off' : variant === 'fec auto' ? 'auto' : 'on');
  let delivered = 0;
  let wrong = 0;
  let lastAt = 0;
  let mspBytes = 0;
  let payloadSent = 0;
  let dataPackets = 0;
  let ackPackets = 0;
  let repairs = 0;
  const r = runSim(
    lc.link,
    [t.sender, t.receiver],
    loss,
    seed,
    {
      step: (now) => {
        for (const m of t.take()) {
          for (let i = 0; i < m.length; i++) if (m[i] !== streamByte(delivered + i)) wrong++;
          delivered += m.length;
          lastAt = now;
        }
        if (delivered >= lc.total || t.error() !== undefined) return 'done';
        return t.feed(now) ? 'queued' : undefined;
      },
      onTransmit: (_from, bytes) => {
        mspBytes += bytes.length;
        const d = decodePacket(bytes);
        if (!d.ok) return;
        for (const f of d.packet.frames) {
          if (f.type === 'data') {
            dataPackets++;
            payloadSent += f.data.length;
          } else if (f.type === 'ack') ackPackets++;
          else if (f.type === 'repair') repairs++;
        }
      },
    },
    400 * 3_600_000,
  );
  const span = lastAt - (r.firstSendMs ?? 0);
  return {
    goodput: span > 0 ? (delivered / span) * 1000 : 0,
    delivered,
    wrong,
    mspBytes,
    payloadSent,
    dataPackets,
    ackPackets,
    repairs,
    recovered: t.recovered(),
    retransmissions: t.retransmissions(),
    virtualMs: span,
    timedOut: r.timedOut,
    error: t.error(),
  };
}

function fmtRate(bps: number): string {
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} MB/s`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(2)} kB/s`;
  return `${bps.toFixed(2)} B/s`;
}

function fmtDuration(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  if (ms >= 3_600_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function mspBench(): string[] {
  const out: string[] = [];
  out.push('msp: goodput over a lossy first hop, virtual time (bench/msp.ts, bench/msp-sim.ts)');
  out.push('  capacity = (1 − loss) × payload rate; payload rate = (maxBytes − 8) B per (airtime of a full frame ÷ duty fraction)');
  out.push('  goodput = message bytes delivered in order ÷ virtual time from the first send to the last byte delivered');
  out.push('  frames: MSP packet + 32 B mesh overhead; independent loss per frame, both directions; pull model (poll only when the');
  out.push('  transmitter is free and the duty budget allows a full frame now); half-duplex links share one channel, offered first');
  out.push('  to the end that did not transmit last; the LoRa sender starts in steady state (its last hour used at 1 %).');
  out.push('  baseline = the original scheme: window 4 packets, fixed 1.5 s timer per packet (selective repeat by timer),');
  out.push('  cumulative ACK of every DATA packet at once; same framing and fragment sizes. meshgw+FEC = fec "on" (REPAIR after');
  out.push('  every 8 new DATA packets over the newest ≤ 16 unacknowledged). ovh = MSP bytes sent by both ends that are not DATA');
  out.push('  payload (headers, ACK/WINDOW, REPAIR) per payload byte delivered; acks/data = packets with an ACK ÷ DATA packets sent.');
  const cases = links();
  for (const lc of cases) {
    const full = lc.link.airtimeMs(lc.link.mtu);
    const rate = ((maxBytesOf(lc.link) - DATA_OVERHEAD) / (full / lc.link.dutyFraction)) * 1000;
    out.push(`  ${lc.link.name}: ${lc.note}; full frame ${full.toFixed(2)} ms; payload rate ${fmtRate(rate)}; ${(lc.total / 1024).toFixed(0)} KiB per run, messages of ${lc.fragmentsPerMessage} fragments`);
  }
  out.push('');
  const w = [13, 6, 12, 12, 8, 9, 7, 7, 6, 11, 9];
  const line = (cells: string[]): string => '  ' + cells.map((c, i) => (i < 3 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' ');
  out.push(line(['link', 'loss', 'variant', 'goodput', '/capac', '×base', 'ovh', 'ack/dt', 'retx', 'rep/recov', 'time']));
  const summary: string[] = [];
  for (const lc of cases) {
    const full = lc.link.airtimeMs(lc.link.mtu);
    const rate = ((maxBytesOf(lc.link) - DATA_OVERHEAD) / (full / lc.link.dutyFraction)) * 1000;
    for (const [li, loss] of LOSSES.entries()) {
      const capacity = (1 - loss) * rate;
      const seed = 1000 + li * 17 + cases.indexOf(lc) * 101;
      const base = measure(lc, loss, 'baseline', seed);
      for (const variant of ['meshgw', 'meshgw+FEC', 'baseline'] as const) {
        const o = variant === 'baseline' ? base : measure(lc, loss, variant, seed);
        const flags = [o.timedOut ? ' TIMED OUT' : '', o.error !== undefined ? ` ERROR ${o.error}` : '', o.wrong > 0 ? ` ${o.wrong} WRONG BYTES` : '', o.delivered < lc.total ? ` delivered ${o.delivered}` : ''].join('');
        out.push(
          line([
            lc.link.name,
            `${(loss * 100).toFixed(0)} %`,
            variant,
            fmtRate(o.goodput),
            (o.goodput / capacity).toFixed(3),
            variant === 'baseline' ? '1' : (o.goodput / base.goodput).toFixed(2),
            ((o.mspBytes - o.payloadSent) / Math.max(1, o.delivered)).toFixed(3),
            (o.ackPackets / Math.max(1, o.dataPackets)).toFixed(3),
            String(o.retransmissions),
            variant === 'meshgw+FEC' ? `${o.repairs}/${o.recovered}` : '-',
            fmtDuration(o.virtualMs),
          ]) + flags,
        );
        if (variant !== 'baseline' && (loss === 0.1 || loss === 0.3)) {
          const target = loss === 0.1 ? 0.9 : 0.8;
          const ratio = o.goodput / capacity;
          summary.push(`  ${lc.link.name} ${variant} at ${loss * 100} %: ${ratio.toFixed(3)} of capacity (target ≥ ${target}: ${ratio >= target ? 'met' : 'NOT met'})${loss === 0.1 && lc.link.name.startsWith('Wi-Fi') ? `, ${(o.goodput / base.goodput).toFixed(1)}× baseline (target ≥ 20: ${o.goodput / base.goodput >= 20 ? 'met' : 'NOT met'})` : ''}`);
        }
      }
    }
  }
  out.push('');
  out.push('  targets:');
  out.push(...summary);

  out.push('');
  out.push('  other modes, goodput ÷ capacity: fec "auto" (REPAIRs while the measured loss is above 5 %, off below 2 %), and');
  out.push('  meshgw without a path estimate (the radio defaults: RTO floor 1 s, ACK delay 200 ms, ACK every 2 packets)');
  out.push(line(['link', 'mode', '', ...LOSSES.map((l) => `${(l * 100).toFixed(0)} %`)]));
  for (const lc of cases) {
    const full = lc.link.airtimeMs(lc.link.mtu);
    const rate = ((maxBytesOf(lc.link) - DATA_OVERHEAD) / (full / lc.link.dutyFraction)) * 1000;
    for (const variant of ['fec auto', 'no path'] as const) {
      const cells = LOSSES.map((loss, li) => {
        const o = measure(lc, loss, variant, 1000 + li * 17 + cases.indexOf(lc) * 101);
        return (o.goodput / ((1 - loss) * rate)).toFixed(3) + (variant === 'fec auto' ? ` ${o.repairs}r` : '') + (o.error !== undefined || o.timedOut ? '!' : '');
      });
      out.push(line([lc.link.name, variant, '', ...cells]));
    }
  }

  out.push('');
  out.push('  latency of sparse messages (one fragment each, one every 4 frame times ÷ duty, 100 per run): send → delivery,');
  out.push('  mean / 95th percentile / max, FEC off and on (with "on" every message is followed by a REPAIR: the queue runs dry)');
  for (const lc of cases) {
    for (const loss of [0.1, 0.3]) {
      const cells: string[] = [];
      for (const fec of ['off', 'on'] as const) {
        const l = latency(lc, loss, fec, 77 + cases.indexOf(lc));
        cells.push(`fec ${fec}: ${fmtDuration(l.mean)} / ${fmtDuration(l.p95)} / ${fmtDuration(l.max)}${l.missing > 0 ? ` (${l.missing} undelivered)` : ''}`);
      }
      out.push(`  ${lc.link.name.padEnd(13)} ${`${loss * 100} %`.padEnd(6)} ${cells.join('   ')}`);
    }
  }
  return out;
}

function latency(lc: LinkCase, loss: number, fec: MspFecMode, seed: number): { mean: number; p95: number; max: number; missing: number } {
  const { link } = lc;
  const maxBytes = maxBytesOf(link);
  const options: MspConnectionOptions = { fec, path: pathOf(link) };
  const a = new MspConnection({ role: 'initiator', connectionId: CONN_ID, now: 0, options });
  const b = new MspConnection({ role: 'responder', connectionId: CONN_ID, now: 0, options });
  const interval = (4 * link.airtimeMs(link.mtu)) / link.dutyFraction;
  const count = 100;
  const size = maxBytes - 14; // one fragment even with FEC's shorter fragments
  const sentAt: number[] = [];
  const lat: number[] = [];
  let nextSend = 0;
  runSim(
    link,
    [
      { poll: (now, max) => a.pollTransmit(now, max), receive: (x, now) => a.handlePacket(x, now), deadline: () => a.nextDeadline() },
      { poll: (now, max) => b.pollTransmit(now, max), receive: (x, now) => b.handlePacket(x, now), deadline: () => b.nextDeadline() },
    ],
    loss,
    seed,
    {
      step: (now) => {
        for (const _ of b.takeReceived()) lat.push(now - sentAt[lat.length]!);
        if (lat.length >= count || a.error !== undefined || b.error !== undefined) return 'done';
        let queued = false;
        while (sentAt.length < count && now >= nextSend) {
          a.send(new Uint8Array(size).fill(sentAt.length & 0xff), now);
          sentAt.push(now);
          nextSend += interval;
          queued = true;
        }
        return queued ? 'queued' : undefined;
      },
      nextAppEvent: () => (sentAt.length < count ? nextSend : undefined),
    },
    400 * 3_600_000,
  );
  const sorted = lat.slice().sort((x, y) => x - y);
  return {
    mean: lat.reduce((x, y) => x + y, 0) / Math.max(1, lat.length),
    p95: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
    missing: count - lat.length,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const l of mspBench()) console.log(l);
}
