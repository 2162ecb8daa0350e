/**
 * `npm run bench`: every benchmark beside a baseline run in the same process, as a ratio.
 * Absolute figures vary with the machine; compare ratios between changes. BENCH_MS sets how long
 * each measurement runs (default 1000 ms). Parts alone: `node dist/bench/memory.js` (the memory goal).
 */
import { airtimeBench } from './airtime.js';
import { kissBench } from './kiss.js';
import { printTable, sink } from './measure.js';
import { loopBench } from './loop.js';
import { meshBench } from './mesh.js';
import { mspBench } from './msp.js';
import { daemonsBench } from './daemons.js';
import { memoryBench } from './memory.js';
import { pacerBench } from './pacer.js';
import { overheadTable, sealBench } from './seal.js';
import { rfc5444Bench } from './rfc5444.js';
import { strokkurBench } from './strokkur.js';
import { sybilBench } from './sybil.js';
import { simBench } from './sim.js';
import { bridgeBench } from './bridge.js';

const rfc5444 = rfc5444Bench();
printTable([...kissBench(), ...pacerBench(), ...airtimeBench(), ...rfc5444.rows, ...sealBench()]);
console.log('');
for (const line of rfc5444.lines) console.log(line);
console.log('');
for (const line of overheadTable()) console.log(line);
for (const line of meshBench()) console.log(line);
{ const s = strokkurBench(); console.log(''); printTable(s.rows); console.log(['', ...s.lines].join('\n')); }
for (const line of await loopBench()) console.log(line);
console.log('');
for (const line of sybilBench()) console.log(line);
console.log('');
for (const line of mspBench()) console.log(line);
console.log('');
for (const line of await daemonsBench()) console.log(line);
// The daemons block goes on with the memory goal (issue 14): the CLI daemon's RSS, idle and flooded.
for (const line of await memoryBench()) console.log(line);
console.log('');
for (const line of await simBench()) console.log(line);
console.log('');
for (const line of await bridgeBench()) console.log(line);
if (sink.value === -1) console.log('');
