/**
 * The loop's latency from `send` to the frame leaving the pacer, in virtual time: two gateways
 * with mesh nodes on a simulated LoRa channel, idle (routes formed, no queue), one datagram sent
 * at a time. Before the loop, a datagram waited for the node's next control deadline (up to a
 * HELLO interval: 12 s measured on a 1 % interface); now it should leave at the instant it is sent.
 *
 * Baseline, in the same run: the airtime of that frame — the ratio latency ÷ airtime says how
 * many frame times a datagram waits on an idle interface (0 is the goal).
 */
import { SimMedium } from '../drivers/sim.js';
import { VirtualClock } from '../src/link/clock.js';
import { Prng } from '../src/link/prng.js';
import { Gateway } from '../src/gateway/gateway.js';
import { identityFromSecret } from '../src/mesh/identity.js';
import { MeshNode } from '../src/mesh/node.js';

export async function loopBench(): Promise<string[]> {
  const clock = new VirtualClock(0);
  const prng = new Prng(3);
  const medium = new SimMedium({ clock, random: () => prng.next() });
  const config = { region: 'eu868' as const, frequency: 868_100_000, bandwidth: 125_000 };
  const leaves: number[] = [];
  const parts = [0, 1].map((i) => {
    const link = medium.attach(`sim${i}`);
    if (i === 0) {
      const original = link.send.bind(link);
      link.send = (f, o) => {
        if ((f[0]! & 0xf0) === 0x50) leaves.push(clock.now());
        return original(f, o);
      };
    }
    const node = new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(i + 40)), epoch: 1 });
    return { link, node, gw: new Gateway({ clock, interfaces: [{ link, config }], mesh: node }) };
  });
  for (const p of parts) await p.gw.start();
  clock.advance(900_000); // HELLOs every few minutes at 1 %: discovery takes its time
  const [a, b] = parts as [(typeof parts)[0], (typeof parts)[0]];
  const socket = a.gw.host!.bind(41);
  const payload = new Uint8Array(20);
  let total = 0;
  const n = 50;
  for (let i = 0; i < n; i++) {
    const at = clock.now();
    const r = socket.send(b.node.sid, 40, payload);
    if (!r.ok) return [`loop latency: send refused (${r.message})`];
    clock.advance(0);
    total += (leaves.at(-1) ?? Infinity) - at;
    clock.advance(30_000);
  }
  for (const p of parts) await p.gw.stop();
  const latency = total / n;
  const airtime = a.link.airtime.airtimeMs(payload.length + 32);
  return [
    '',
    'loop: send → frame leaves the pacer, idle EU868 1 % interface (virtual time)',
    `  latency ${latency.toFixed(3)} ms   baseline: the frame's airtime ${airtime.toFixed(1)} ms   ratio ${(latency / airtime).toFixed(3)}`,
  ];
}
