/**
 * A planner's mesh scenario (`meshgw sim --scenario FILE`): the media, the nodes with their
 * interfaces and positions, the link qualities, and the traffic — YAML, checked by a zod schema.
 * An error names the file, the key path and the problem, as the daemon's config file does.
 *
 * Units as in the daemon's config: frequencies and bandwidths in Hz, times in seconds, distances
 * in metres, powers in dBm. The format, with every key, is in docs/sim.md; examples/ has three.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { LORA_BANDWIDTHS } from '../gateway/config-file.js';
import { parseYamlWith, yamlExpect as expect, yamlStrict, YamlConfigError } from '../gateway/yaml-config.js';
import { REGION_NAMES, type RegionName } from '../link/airtime/regions.js';

/** A scenario that cannot be run: names the file, the key and the problem. CLI exit 2. */
export class ScenarioError extends YamlConfigError {
  override name = 'ScenarioError';
}

/** Virtual time a run covers at most (a week): bounded memory for per-frame records. */
export const MAX_HOURS = 168;
/** Nodes in one scenario at most. */
export const MAX_NODES = 1000;
/** Traffic entries (flows after expanding `pairs`) at most. */
export const MAX_FLOWS = 10_000;

const num = (what: string, min: number, max: number) => z.number({ error: expect(`${what} from ${min} to ${max}`) }).min(min, { error: expect(`${what} from ${min} to ${max}`) }).max(max, { error: expect(`${what} from ${min} to ${max}`) });
const int = (what: string, min: number, max: number) => num(what, min, max).int({ error: expect(`a whole ${what} from ${min} to ${max}`) });
const name = z.string({ error: expect('a name') }).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/, { error: expect('a name of letters, digits, _ . - (at most 32)') });
const lossSchema = num('probability', 0, 1);
const bandwidthError = expect(`one of ${LORA_BANDWIDTHS.join(', ')} Hz`);

const radioCommon = {
  /** Transmit power, dBm (the path-loss model's start). */
  txPower: num('power in dBm', -10, 40).optional(),
  /** Random loss of every reception on this medium, besides what distance and collisions cost. */
  loss: lossSchema.default(0),
  /** Who hears whom: everyone (all), by distance (positions), or only the pairs under `links`. */
  reach: z.enum(['all', 'positions', 'links'], { error: expect('all, positions or links') }).optional(),
  /** The path-loss exponent of the log-distance model (2 free space, 2.7–3.5 suburban/urban). */
  pathLossExponent: num('exponent', 1.6, 6).default(2.7),
};

const loraMedium = yamlStrict({
  kind: z.literal('lora'),
  frequency: int('frequency in Hz', 100_000_000, 3_000_000_000),
  bandwidth: z.number({ error: bandwidthError }).refine((v) => LORA_BANDWIDTHS.includes(v), { error: bandwidthError }).default(125_000),
  sf: int('spreading factor', 5, 12).default(9),
  cr: int('coding-rate denominator (4/5 … 4/8)', 5, 8).default(5),
  ...radioCommon,
});
const afskMedium = yamlStrict({
  kind: z.literal('afsk'),
  modem: z.enum(['afsk1200', 'fsk9600'], { error: expect('afsk1200 or fsk9600') }).default('afsk1200'),
  frequency: int('frequency in Hz', 1_000_000, 3_000_000_000).default(144_800_000),
  txDelay: num('seconds', 0, 2).default(0.3),
  ...radioCommon,
});
const wifiMedium = yamlStrict({
  kind: z.literal('wifi'),
  bitRate: int('bit rate in bit/s', 1000, 1_000_000_000).default(6_000_000),
  mtu: int('MTU in bytes', 128, 65_507).default(1200),
  frequency: int('frequency in Hz', 100_000_000, 10_000_000_000).default(2_437_000_000),
  ...radioCommon,
});
const mediumSchema = z.discriminatedUnion('kind', [loraMedium, afskMedium, wifiMedium], { error: expect('a medium with kind lora, afsk or wifi') });

const position = z.tuple([num('metres', -1e6, 1e6), num('metres', -1e6, 1e6)], { error: expect('a position [x, y] in metres') });
const nodeSchema = yamlStrict({
  name,
  interfaces: z.array(name, { error: expect('a list of medium names') }).min(1, { error: expect('at least one medium') }).max(8, { error: expect('at most 8 interfaces') }),
  at: position.optional(),
});
const randomNodes = yamlStrict({
  count: int('number of nodes', 1, MAX_NODES),
  /** Width and height of the area the nodes are scattered over, metres. */
  area: z.tuple([num('metres', 1, 1e6), num('metres', 1, 1e6)], { error: expect('an area [width, height] in metres') }),
  interfaces: z.array(name).min(1).max(8),
  /** Node names are PREFIX0, PREFIX1, … */
  prefix: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,15}$/, { error: expect('a prefix of letters, digits, _ -') }).default('n'),
});

const linkSchema = yamlStrict({
  between: z.tuple([name, name], { error: expect('two node names') }),
  /** The medium (default: the only one both nodes share). */
  medium: name.optional(),
  /** Loss of this pair, both ways (1: no link at all). */
  loss: lossSchema,
});

const endpoint = z.union([name, z.literal('random')], { error: expect('a node name or random') });
const seconds = (what: string) => num(`${what} in seconds`, 0, MAX_HOURS * 3600);
const trafficCommon = {
  from: endpoint,
  to: endpoint,
  /** With random ends: how many flows, each between its own random pair. */
  pairs: int('number of flows', 1, MAX_FLOWS).default(1),
};
const datagramTraffic = yamlStrict({
  kind: z.literal('datagram'),
  ...trafficCommon,
  every: num('interval in seconds', 0.01, 86_400),
  bytes: int('datagram size in bytes', 8, 4096).default(32),
  start: seconds('start').default(120),
  stop: seconds('stop').optional(),
});
const mspTraffic = yamlStrict({
  kind: z.literal('msp'),
  ...trafficCommon,
  at: seconds('start').default(300),
  bytes: int('transfer size in bytes', 1, 64 * 1024 * 1024),
});
const strokkurTraffic = yamlStrict({
  kind: z.literal('strokkur'),
  ...trafficCommon,
  at: seconds('start').default(300),
  bytes: int('message size in bytes', 1, 4 * 1024 * 1024),
});
const trafficSchema = z.discriminatedUnion('kind', [datagramTraffic, mspTraffic, strokkurTraffic], { error: expect('traffic with kind datagram, msp or strokkur') });

const scenarioSchema = yamlStrict({
  name: z.string({ error: expect('a name') }).min(1).max(80).optional(),
  description: z.string().max(2000).optional(),
  seed: int('seed', 0, 2 ** 31 - 1).default(1),
  hours: num('hours', 0.001, MAX_HOURS).default(1),
  region: z.enum(REGION_NAMES as [RegionName, ...RegionName[]], { error: expect(`one of ${REGION_NAMES.join(', ')}`) }).default('eu868'),
  media: z.record(name, mediumSchema, { error: expect('a mapping of medium names to media') }),
  nodes: z.array(nodeSchema, { error: expect('a list of nodes') }).default([]),
  random: randomNodes.optional(),
  links: z.array(linkSchema, { error: expect('a list of links') }).default([]),
  traffic: z.array(trafficSchema, { error: expect('a list of traffic') }).default([]),
});

export type MediumSpec = z.infer<typeof mediumSchema>;
export type TrafficSpec = z.infer<typeof trafficSchema>;
export interface NodeSpec {
  name: string;
  interfaces: string[];
  at?: [number, number];
}
export interface LinkSpec {
  between: [string, string];
  medium: string;
  loss: number;
}
/** A scenario after checks: nodes expanded, every reference resolved, `reach` decided. */
export interface Scenario {
  file: string;
  name: string;
  description: string | undefined;
  seed: number;
  hours: number;
  region: RegionName;
  media: Map<string, MediumSpec & { reach: 'all' | 'positions' | 'links' }>;
  nodes: NodeSpec[];
  links: LinkSpec[];
  traffic: TrafficSpec[];
}

/** A small seeded generator for the scenario's own draws (positions, random pairs). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The scenario in `text` (YAML), checked; `file` names it in messages. Throws ScenarioError. */
export function parseScenarioText(text: string, file: string): Scenario {
  const raw = parseYamlWith(scenarioSchema, text, file, (m) => new ScenarioError(m));
  const fail = (where: string, problem: string): never => {
    throw new ScenarioError(`${file}: ${where}: ${problem}`);
  };
  const nodes: NodeSpec[] = raw.nodes.map((n) => ({ name: n.name, interfaces: n.interfaces, ...(n.at ? { at: n.at } : {}) }));
  if (raw.random) {
    const r = raw.random;
    const draw = mulberry32(raw.seed ^ 0x5eed);
    for (let i = 0; i < r.count; i++) nodes.push({ name: `${r.prefix}${i}`, interfaces: r.interfaces, at: [draw() * r.area[0], draw() * r.area[1]] });
  }
  if (nodes.length === 0) fail('nodes', 'a scenario needs at least one node (under nodes, or random)');
  if (nodes.length > MAX_NODES) fail('nodes', `at most ${MAX_NODES} nodes, got ${nodes.length}`);
  const byName = new Map<string, NodeSpec>();
  nodes.forEach((n, i) => {
    if (byName.has(n.name)) fail(`nodes[${i}].name`, `${JSON.stringify(n.name)} is used twice`);
    byName.set(n.name, n);
  });
  const mediaNames = Object.keys(raw.media);
  if (mediaNames.length === 0) fail('media', 'a scenario needs at least one medium');
  nodes.forEach((n, i) => {
    n.interfaces.forEach((m, j) => {
      if (!(m in raw.media)) fail(`nodes[${i}].interfaces[${j}]`, `no medium named ${JSON.stringify(m)}; media are ${mediaNames.join(', ')}`);
    });
    if (new Set(n.interfaces).size !== n.interfaces.length) fail(`nodes[${i}].interfaces`, 'a medium is listed twice');
  });
  const media = new Map<string, MediumSpec & { reach: 'all' | 'positions' | 'links' }>();
  for (const [m, spec] of Object.entries(raw.media)) {
    const members = nodes.filter((n) => n.interfaces.includes(m));
    const reach = spec.reach ?? (members.length > 0 && members.every((n) => n.at) ? 'positions' : 'all');
    if (reach === 'positions') {
      const missing = members.find((n) => !n.at);
      if (missing) fail(`media.${m}.reach`, `positions, but node ${missing.name} has no position (at: [x, y])`);
    }
    media.set(m, { ...spec, reach });
  }
  const links: LinkSpec[] = raw.links.map((l, i) => {
    const [a, b] = l.between;
    for (const [k, n] of [a, b].entries()) if (!byName.has(n)) fail(`links[${i}].between[${k}]`, `no node named ${JSON.stringify(n)}`);
    if (a === b) fail(`links[${i}].between`, 'a link joins two different nodes');
    const shared = byName.get(a)!.interfaces.filter((m) => byName.get(b)!.interfaces.includes(m));
    const medium = l.medium ?? (shared.length === 1 ? shared[0]! : fail(`links[${i}]`, shared.length === 0 ? `${a} and ${b} share no medium` : `${a} and ${b} share ${shared.join(' and ')}: say which (medium:)`));
    if (!shared.includes(medium)) fail(`links[${i}].medium`, `${a} and ${b} are not both on ${medium}`);
    return { between: [a, b], medium, loss: l.loss };
  });
  const traffic = raw.traffic;
  traffic.forEach((t, i) => {
    for (const end of ['from', 'to'] as const) {
      if (t[end] !== 'random' && !byName.has(t[end])) fail(`traffic[${i}].${end}`, `no node named ${JSON.stringify(t[end])}`);
    }
    if (t.from !== 'random' && t.from === t.to) fail(`traffic[${i}]`, 'from and to are the same node');
    if ((t.from !== 'random' || t.to !== 'random') && t.pairs > 1 && t.from !== 'random' && t.to !== 'random') fail(`traffic[${i}].pairs`, 'pairs needs from or to to be random');
    if (t.kind === 'datagram' && t.stop !== undefined && t.stop <= t.start) fail(`traffic[${i}].stop`, 'stop must come after start');
  });
  if (nodes.length < 2 && traffic.length > 0) fail('traffic', 'traffic needs at least two nodes');
  const flows = traffic.reduce((n, t) => n + t.pairs, 0);
  if (flows > MAX_FLOWS) fail('traffic', `at most ${MAX_FLOWS} flows, got ${flows}`);
  return {
    file,
    name: raw.name ?? file.replace(/^.*\//, '').replace(/\.ya?ml$/, ''),
    description: raw.description,
    seed: raw.seed,
    hours: raw.hours,
    region: raw.region,
    media,
    nodes,
    links,
    traffic,
  };
}

/** Reads and checks the scenario file at `path`. Throws ScenarioError. */
export function loadScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ScenarioError(`${path}: cannot read: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`);
  }
  return parseScenarioText(text, path);
}
