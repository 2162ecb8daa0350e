/**
 * A simulator report as text for a person: one table of nodes, one of traffic, one of media,
 * and what went wrong (duty-cycle violations, unfinished transfers, what the nodes logged).
 */
import type { Percentiles, SimReport } from './world.js';

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

const seconds = (ms: number): string => (ms < 10_000 ? (ms / 1000).toFixed(2) : ms < 100_000 ? (ms / 1000).toFixed(1) : (ms / 1000).toFixed(0));
const pct = (x: number): string => (x * 100).toFixed(x < 0.1 ? 1 : 0) + '%';
const lat = (p: Percentiles | undefined): string => (p ? `${seconds(p.p50)}/${seconds(p.p90)}/${seconds(p.p99)}` : '-');

export function formatReport(r: SimReport): string[] {
  const out: string[] = [];
  const speed = Number.isFinite(r.speed) ? `${Math.round(r.speed)}× real time` : 'instant';
  out.push(`scenario ${r.scenario} (seed ${r.seed}): ${r.nodes.length} nodes, ${r.hours} h of virtual time in ${(r.wallMs / 1000).toFixed(1)} s (${speed})`);
  out.push('');
  const nodeRows: string[][] = [];
  for (const n of r.nodes) {
    n.interfaces.forEach((i, k) => {
      const budget = i.budgetMs !== undefined ? `${seconds(i.worstWindowAirtimeMs)}/${seconds(i.budgetMs)} (${pct(i.worstWindowAirtimeMs / i.budgetMs)})` : `${seconds(i.worstWindowAirtimeMs)} (no limit)`;
      const d = n.datagrams;
      nodeRows.push([
        k === 0 ? n.name : '',
        i.medium,
        k === 0 ? String(n.neighbours) : '',
        k === 0 ? String(n.routes) : '',
        k === 0 ? String(n.routeChanges) : '',
        `${i.frames.sent}/${i.frames.received}`,
        seconds(i.airtimeMs),
        budget,
        k === 0 ? (d.sent > 0 ? `${d.delivered}/${d.sent}` : '-') : '',
        k === 0 ? (d.sent > 0 ? pct(d.lost / d.sent) : '-') : '',
        k === 0 ? lat(d.latencyMs) : '',
        k === 0 ? (n.transfers.started > 0 ? `${n.transfers.completed}/${n.transfers.started}` : '-') : '',
      ]);
    });
  }
  out.push(
    ...table(['node', 'iface', 'nbrs', 'routes', 'changes', 'tx/rx', 'airtime s', 'worst hour s / budget', 'dgrams ok', 'lost', 'latency p50/p90/p99 s', 'transfers ok'], nodeRows),
  );
  if (r.flows.length > 0) {
    out.push('');
    const flowRows = r.flows.map((f) => [
      f.kind,
      `${f.from}→${f.to}`,
      String(f.bytes),
      f.kind === 'datagram' ? `${f.delivered}/${f.sent}` : f.delivered === 1 ? 'done' : 'NOT DONE',
      f.kind === 'datagram' ? (f.sent > 0 ? pct(1 - f.delivered / f.sent) : '-') : '',
      f.kind === 'datagram' ? lat(f.latencyMs) : f.latencyMs ? seconds(f.latencyMs.p50) : '-',
      f.error ?? '',
    ]);
    out.push(...table(['traffic', 'from→to', 'bytes', 'delivered', 'lost', 'latency s (p50/p90/p99, or to complete)', 'problem'], flowRows));
  }
  out.push('');
  out.push(
    ...table(
      ['medium', 'kind', 'reach', 'transmissions', 'received', 'collisions', 'half-duplex', 'lost'],
      r.media.map((m) => [m.name, m.kind, m.reach, String(m.transmissions), String(m.delivered), String(m.collisions), String(m.halfDuplex), String(m.lost)]),
    ),
  );
  out.push('');
  if (r.dutyCycleViolations.length === 0) {
    out.push('duty cycle: kept on every interface (the most airtime in any sliding window, counted from the medium, within the budget)');
  } else {
    for (const v of r.dutyCycleViolations) out.push(`DUTY CYCLE EXCEEDED: ${v.node} on ${v.medium}: ${seconds(v.worstWindowAirtimeMs)} s in one window, budget ${seconds(v.budgetMs)} s`);
  }
  if (r.log.length > 0) {
    out.push('');
    out.push('logged by the nodes (distinct lines, with counts):');
    for (const l of r.log.slice(0, 20)) out.push(`  ${l.count}× ${l.line}`);
    if (r.log.length > 20) out.push(`  … and ${r.log.length - 20} more distinct lines (--json has them)`);
  }
  return out;
}
