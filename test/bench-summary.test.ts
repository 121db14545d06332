// bench/summary.ts: the kept per-suite results, README's generated performance section and the ratio chart.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from '../bench/harness.js';
import { README_BEGIN, README_END, mergeSummary, ratiosSvg, readmeSection, updateReadme } from '../bench/summary.js';

const m1 = { cpu: 'cpu A', cores: 2, memGiB: 24, node: 'v20', loadavg1: 1, date: '2026-01-01T00:00:00Z' };
const m2 = { ...m1, date: '2026-02-02T00:00:00Z' };
const r = (suite: string, name: string, value: number, extra: Partial<BenchResult> = {}): BenchResult => ({ suite, name, value, unit: 'op/s', ...extra });

t.test('a run replaces only the bench files it ran', async (t) => {
  const a = mergeSummary({}, { 'wire-ib': [r('wire', 'x', 1)], fabric: [r('fabric', 'y', 2)], 'fabric-udp': [r('fabric', 'u', 5)] }, m1);
  const b = mergeSummary(a, { fabric: [r('fabric', 'y', 3), r('fabric', 'z', 4)] }, m2);
  t.same(b['wire-ib'], { machine: m1, results: [r('wire', 'x', 1)] });
  t.same(b['fabric-udp'], { machine: m1, results: [r('fabric', 'u', 5)] }, 'another file of the same suite is kept');
  t.same(b.fabric!.results.map((x) => x.value), [3, 4]);
  t.equal(b.fabric!.machine.date, m2.date);
});

t.test('README section: headline rows with ratio and target, replaced in place between the markers', async (t) => {
  const s = mergeSummary({}, {
    fabric: [
      r('fabric', 'fast path', 21_092, { ratio: { to: 'raw dgram', value: 0.26 }, target: { text: '>= 0.5x raw dgram', met: false } }),
      r('fabric', 'no ratio, not shown', 5),
    ],
    wire: [
      r('wire', 'marked', 47, { headline: true }),
      r('wire', 'unmarked in a marking file', 9, { ratio: { to: 'x', value: 2 } }),
    ],
  }, m1);
  const sec = readmeSection(s);
  t.match(sec, /\| fabric \| fast path \| 21,092 op\/s \| 0\.26x raw dgram \| >= 0\.5x raw dgram: \*\*not met\*\* \| 2026-01-01, load 1 \|/);
  t.match(sec, /\| wire \| marked \| 47\.0 op\/s \|/);
  t.notMatch(sec, /no ratio, not shown/);
  t.notMatch(sec, /unmarked in a marking file/);
  const readme = `# x\n\n## Performance\n\nintro\n\n## Layout\n\nmore\n`;
  const once = updateReadme(readme, sec);
  t.ok(once.indexOf(README_BEGIN) > once.indexOf('intro') && once.indexOf(README_END) < once.indexOf('## Layout'), 'inserted at the end of the Performance section');
  const twice = updateReadme(once, readmeSection(mergeSummary(s, { fabric: [r('fabric', 'fast path', 1, { ratio: { to: 'raw dgram', value: 0.6 } })] }, m2)));
  t.equal(twice.split(README_BEGIN).length, 2, 'one generated section, not two');
  t.match(twice, /0\.60x raw dgram/);
  t.notMatch(twice, /21,092/);
  t.match(twice, /## Layout\n\nmore\n$/);
});

t.test('the ratio chart is well-formed SVG with one bar per ratio', async (t) => {
  const s = mergeSummary({}, { a: [
    r('a', 'slower & <smaller>', 1, { ratio: { to: 'b', value: 0.25 }, target: { text: '>= 0.5x', met: false } }),
    r('a', 'faster', 1, { ratio: { to: 'b', value: 27.6 } }),
    r('a', 'no ratio', 1),
  ] }, m1);
  const svg = ratiosSvg(s);
  const dir = mkdtempSync(join(tmpdir(), 'bench-svg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'r.svg');
  writeFileSync(f, svg);
  // An independent XML parser: counts the bars (rects other than the background) and target ticks.
  const out = execFileSync('/usr/bin/python3', ['-c', `
import sys, xml.dom.minidom as d
doc = d.parse(sys.argv[1])
rects = doc.getElementsByTagName('rect')
print(len(rects) - 1, sum(1 for l in doc.getElementsByTagName('line') if l.getElementsByTagName('title')))
print(doc.documentElement.getAttribute('width'))`, f], { encoding: 'utf8' });
  const [counts] = out.split('\n');
  t.equal(counts, '2 1', 'two bars, one target tick');
  t.match(svg, /slower &amp; &lt;smaller&gt;/);
});
