// `npm run bench`: runs every bench/*.bench.ts (or those named on the command line), prints
// progress, and writes bench/results/latest.json and latest.md with the machine it ran on.
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult } from './harness.js';
import { mergeSummary, ratiosSvg, readmeSection, updateReadme, type Summary } from './summary.js';

const here = dirname(fileURLToPath(import.meta.url));

export function machine(): Record<string, string | number> {
  return {
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    loadavg1: Number(loadavg()[0]?.toFixed(2)),
    date: new Date().toISOString(),
  };
}

function fmt(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toPrecision(3);
}

export function markdown(results: BenchResult[], m: Record<string, string | number>): string {
  const lines = [
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}, load ${m.loadavg1} at start, ${m.date}`,
    '',
    '| suite | benchmark | value | unit | ratio | note |',
    '|---|---|---:|---|---|---|',
  ];
  for (const r of results) {
    const ratio = r.ratio ? `${r.ratio.value.toFixed(2)}x ${r.ratio.to}` : '';
    lines.push(`| ${r.suite} | ${r.name} | ${fmt(r.value)} | ${r.unit} | ${ratio} | ${r.note ?? ''} |`);
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // --report: redraw README's section and the chart from summary.json without measuring anything.
  const reportOnly = args.includes('--report');
  const only = args.filter((a) => a !== '--report');
  const files = reportOnly ? [] : readdirSync(here).filter((f) => f.endsWith('.bench.ts'))
    .filter((f) => only.length === 0 || only.some((o) => f.includes(o))).sort();
  const m = machine();
  const results: BenchResult[] = [];
  const byFile: Record<string, BenchResult[]> = {};
  for (const [i, f] of files.entries()) {
    process.stderr.write(`[${i + 1}/${files.length}] ${f} ...\n`);
    const t0 = Date.now();
    const mod = (await import(pathToFileURL(join(here, f)).href)) as { run(): Promise<BenchResult[]> };
    const rs = await mod.run();
    for (const r of rs) process.stderr.write(`    ${r.name}: ${fmt(r.value)} ${r.unit}${r.ratio ? ` (${r.ratio.value.toFixed(2)}x ${r.ratio.to})` : ''}\n`);
    process.stderr.write(`    done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    results.push(...rs);
    byFile[f.replace(/\.bench\.ts$/, '')] = rs;
  }
  const out = join(here, 'results');
  mkdirSync(out, { recursive: true });
  if (!reportOnly) {
    writeFileSync(join(out, 'latest.json'), JSON.stringify({ machine: m, results }, null, 2) + '\n');
    writeFileSync(join(out, 'latest.md'), markdown(results, m));
  }
  // The kept summary (committed): this run's files replace their previous results; README's
  // performance section and the ratio chart are drawn from it.
  const summaryFile = join(out, 'summary.json');
  const old = existsSync(summaryFile) ? (JSON.parse(readFileSync(summaryFile, 'utf8')) as Summary) : {};
  const summary = mergeSummary(old, byFile, m);
  writeFileSync(summaryFile, JSON.stringify(summary, null, 2) + '\n');
  writeFileSync(join(out, 'ratios.svg'), ratiosSvg(summary));
  const readme = join(here, '..', 'README.md');
  writeFileSync(readme, updateReadme(readFileSync(readme, 'utf8'), readmeSection(summary)));
  if (!reportOnly) process.stdout.write(markdown(results, m));
  process.stderr.write(`wrote ${reportOnly ? '' : `${join(out, 'latest.md')}, `}summary.json, ratios.svg and README.md's performance section\n`);
}

await main();
