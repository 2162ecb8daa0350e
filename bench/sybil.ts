/**
 * The control plane under a sybil flood: throwaway identities, each with a properly signed
 * HELLO (and, in the second part, a TC), at one victim. The victim's admission budget is opened
 * wide here so that every identity is verified and entered and the tables reach their caps —
 * the worst case for the per-message cost; with the default budget most are refused unread.
 *
 * 1. Per-HELLO cost along 10,000 sybil HELLOs (BENCH_SYBILS), beside its own baseline: the mean
 *    of the last 500 over the mean of the first 500 (after a warm-up on another victim, so that
 *    the baseline is not the JIT's). Flat (≈ 1) means no table makes a HELLO
 *    dearer as it fills; the absolute figure is mostly one Ed25519 verification. Heap bytes per
 *    known node: heapUsed before and after (settled with global.gc when node runs with
 *    --expose-gc; otherwise a rough figure), over the known nodes, so it includes each node's
 *    share of links, freshness state, graveyard and the verified set.
 * 2. 3,000 identities with a HELLO and a TC each (each TC advertising the 30 identities on either
 *    side, who advertise it back, so every edge is confirmed): edges kept, one route computation,
 *    and one poll that writes our HELLO and TC, beside the same victim before the flood.
 *
 * The identities' signatures come from node's native Ed25519 (byte for byte what signing.ts
 * produces; test/mesh-control-attacks.test.ts checks that), so that making them does not take
 * longer than the victim's work. Prints only; asserts nothing.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ControlPlane, nodeIdOf } from '../src/mesh/control.js';
import { identityFromSecret, sidOfSigningKey } from '../src/mesh/identity.js';
import { computeRoutes } from '../src/mesh/routing.js';
import { canonicalMessage } from '../src/mesh/signing.js';
import type { Message, Tlv } from '../src/rfc5444/model.js';
import { encodeTime } from '../src/rfc5444/time-tlv.js';
import { encodePacket } from '../src/rfc5444/wire.js';
import { LoraAirtimeModel } from '../src/link/airtime/lora-model.js';

const SYBILS = Number(process.env.BENCH_SYBILS ?? 10_000);
const WITH_TC = 3000;
const WINDOW = 500;
const lora = new LoraAirtimeModel({ sf: 7, bandwidth: 125_000, cr: 5 });
const RADIO = { name: 'radio', mtu: 255, airtimeMs: (b: number) => lora.airtimeMs(Math.min(b, 255)) };
const HOUR = 3_600_000;

interface Sybil {
  id: string;
  originator: Uint8Array;
  edPublic: Uint8Array;
  key: KeyObject;
}

function secret(n: number): Uint8Array {
  const s = new Uint8Array(32);
  new DataView(s.buffer).setUint32(0, n);
  s[31] = 0x5b;
  return s;
}

function sybils(first: number, count: number): Sybil[] {
  return Array.from({ length: count }, (_, i) => {
    const d = Buffer.from(secret(first + i)).toString('base64url');
    // A raw private key through JWK: node derives the public half itself (x is not used).
    const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d, x: 'A'.repeat(43) }, format: 'jwk' });
    const edPublic = new Uint8Array(Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url'));
    const sid = sidOfSigningKey(edPublic);
    return { id: nodeIdOf(sid), originator: sid.subarray(0, 16), edPublic, key };
  });
}

function tlv(type: number, value: Uint8Array): Tlv {
  return { type, extType: 0, value };
}

/** A signed HELLO (claiming to hear `victim`) or TC (advertising `edges`), as any key holder can make. */
function packet(s: Sybil, type: 0 | 1, seqno: number, victim: string, edges: string[] = []): Uint8Array {
  const boot = new Uint8Array(12);
  new DataView(boot.buffer).setUint32(0, 1);
  const cost = new Uint8Array(4);
  new DataView(cost.buffer).setFloat32(0, RADIO.airtimeMs(255) / 255);
  const tlvs = [tlv(1, Uint8Array.of(encodeTime(HOUR))), tlv(228, boot), tlv(224, s.edPublic)];
  if (type === 0) tlvs.push(tlv(0, Uint8Array.of(encodeTime(HOUR / 3))));
  const addresses =
    type === 0
      ? [{ address: Buffer.from(victim, 'hex'), prefixLength: 128, tlvs: [tlv(3, Uint8Array.of(2)), tlv(225, Uint8Array.of(255))] }]
      : edges.map((id) => ({ address: Buffer.from(id, 'hex'), prefixLength: 128, tlvs: [tlv(226, cost), tlv(227, Uint8Array.of(0, 255))] }));
  const m: Message = { type, addrLength: 16, originator: s.originator, hopLimit: type === 0 ? 1 : 255, hopCount: 0, seqno, tlvs, addresses };
  const icv = new Uint8Array(67);
  icv[0] = 252;
  icv.set(nodeSign(null, canonicalMessage(m), s.key), 3);
  m.tlvs = [...tlvs, { type: 5, extType: 1, value: icv }];
  return encodePacket({ version: 0, seqno: null, tlvs: [], messages: [m] });
}

function victim(): ControlPlane {
  const v = new ControlPlane({
    identity: identityFromSecret(secret(1)),
    boot: { epoch: 1, nonce: new Uint8Array(8) },
    newIdentityRate: 1e9,
    newIdentityBurst: 1e9,
    random: () => 0.5,
  });
  v.addInterface(RADIO, 0);
  return v;
}

const gc = (globalThis as { gc?: () => void }).gc;

function heapUsed(): number {
  gc?.();
  return process.memoryUsage().heapUsed;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Runs the receive path on a throwaway victim first, so that the baseline is not the JIT's warm-up. */
function warmUp(): void {
  const w = victim();
  sybils(3_000_000, WINDOW).forEach((s, i) => w.receive('radio', packet(s, 0, 0, w.id), 1_000 + i * 10));
}

function helloFlood(): string[] {
  warmUp();
  const v = victim();
  const flood = sybils(1_000_000, SYBILS).map((s, i) => packet(s, 0, i & 0xffff, v.id));
  v.poll(0);
  v.takeOutput();
  const before = heapUsed();
  const cost: number[] = [];
  for (let i = 0; i < flood.length; i++) {
    const now = 1_000 + i * 10;
    const t0 = performance.now();
    v.receive('radio', flood[i]!, now);
    cost.push(performance.now() - t0);
    if (i % 100 === 99) {
      v.poll(now);
      v.takeOutput();
    }
  }
  const t = v.tables();
  const grown = heapUsed() - before;
  const first = mean(cost.slice(0, WINDOW));
  const last = mean(cost.slice(-WINDOW));
  const settled = gc ? 'settled with global.gc' : 'rough: run node --expose-gc for a settled figure';
  return [
    `sybil flood, ${flood.length} signed HELLOs, all admitted: first ${WINDOW} ${first.toFixed(3)} ms each, last ${WINDOW} ${last.toFixed(3)} ms each; ratio last ÷ first ${(last / first).toFixed(2)}`,
    `  tables after: ${t.nodes} known nodes (${v.counters.forgotten} forgotten, ${t.graveyard} in the graveyard), ${t.links} links (${v.counters.linksRefused} refused), ${t.verified} verified fragments, ${t.deadlines} deadlines`,
    `  victim heap: ${(grown / 1024 / 1024).toFixed(1)} MiB more, ${Math.round(grown / Math.max(1, t.nodes - 1))} bytes per known node (${settled})`,
  ];
}

function routeAndPoll(v: ControlPlane, at: number): { routeMs: number; pollMs: number; fragments: number; bytes: number } {
  const t0 = performance.now();
  const reps = 5;
  for (let i = 0; i < reps; i++) computeRoutes(v.id, v.localLinks(), v.topology());
  const routeMs = (performance.now() - t0) / reps;
  v.takeOutput();
  // Poll once a HELLO interval has passed, so that the poll writes and signs our HELLO (and TC).
  const due = at + v.helloIntervalOf('radio')! + 1;
  const t1 = performance.now();
  v.poll(due);
  const pollMs = performance.now() - t1;
  const hello = v.takeOutput().filter((p) => p.kind === 'hello');
  return { routeMs, pollMs, fragments: hello.length, bytes: hello.reduce((n, p) => n + p.bytes.length, 0) };
}

function helloAndTcFlood(): string[] {
  const v = victim();
  const neighbour = sybils(5, 1)[0]!;
  v.receive('radio', packet(neighbour, 0, 1, v.id), 1_000);
  const base = routeAndPoll(v, 2_000);
  const flood = sybils(2_000_000, WITH_TC);
  const packets = flood.map((s, i) => {
    const around = Array.from({ length: 60 }, (_, j) => flood[(i + WITH_TC + (j < 30 ? j - 30 : j - 29)) % WITH_TC]!.id);
    return [packet(s, 0, 1, v.id), packet(s, 1, 1, v.id, around)] as const;
  });
  const before = heapUsed();
  packets.forEach(([hello, tc], i) => {
    v.receive('radio', hello, 10_000 + i);
    v.receive('radio', tc, 10_000 + i);
  });
  const grown = heapUsed() - before;
  const after = routeAndPoll(v, 20_000);
  const t = v.tables();
  return [
    `${WITH_TC} identities with a HELLO and a TC each, all admitted: ${t.edges} advertised edges kept (${v.counters.edgesRefused} refused), ${v.topology().length} confirmed; heap ${(grown / 1024 / 1024).toFixed(1)} MiB more`,
    `  route computation ${after.routeMs.toFixed(1)} ms (before the flood ${base.routeMs.toFixed(3)} ms); a poll that writes our HELLO and TC ${after.pollMs.toFixed(1)} ms (before ${base.pollMs.toFixed(1)} ms); our HELLO ${after.fragments} fragments, ${after.bytes} bytes (before ${base.fragments}, ${base.bytes})`,
  ];
}

/** Lines to print (about a minute of wall time, mostly Ed25519 verifications). */
export function sybilBench(): string[] {
  const start = performance.now();
  const lines = [...helloFlood(), ...helloAndTcFlood()];
  lines.push(`  (sybil benchmarks: wall ${((performance.now() - start) / 1000).toFixed(1)} s)`);
  return lines;
}
