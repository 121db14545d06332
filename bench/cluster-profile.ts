// Profiling driver for issue 9 (the shim in bin/ipoib-cluster re-executes node, so --cpu-prof on it
// profiles the wrong process): `node --import tsx --cpu-prof --cpu-prof-dir DIR bench/cluster-profile.ts N`
// runs one boot storm of N hosts in this process; summarise the .cpuprofile with bench/cpuprofile-top.ts.
import { main } from '../bin/ipoib-cluster.js';

const n = process.argv[2] ?? '1000';
const out: string[] = [];
const code = await main(['--nodes', n, '--json', '--quiet'], { out: (s: string) => { out.push(s); }, err: (s: string) => { process.stderr.write(s); },  errIsTTY: false });
const r = JSON.parse(out.join('')) as { ok: boolean; phases: { name: string; wallMs: number; cpuMs?: number; delivered: number; notListened: number }[] };
for (const p of r.phases) process.stderr.write(`${p.name}: ${p.wallMs.toFixed(0)} ms wall, ${(p.cpuMs ?? 0).toFixed(0)} ms CPU, ${p.delivered} deliveries, ${p.notListened} not listened\n`);
process.stderr.write(`ok=${r.ok} code=${code}\n`);
