// DESIGN.md's layering, enforced: every relative import of every source file is checked against
// the folders its own folder may depend on.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// Bottom to top. `codec` is the contract shared by link/wire and protocol (WireError, checked reads):
// protocol and link never import each other; server and client never import each other.
// link/kernel: the DatagramEndpoint on the kernel's UDP sockets (node:dgram), beside the IPoIB one.
const LINK = ['link/wire', 'link/fabric', 'link/verbs', 'link/ipoib', 'link/ha', 'link/kernel'];
export const ALLOWED: Record<string, string[]> = {
  'codec': [],
  'link/wire': ['codec'],
  'link/fabric': ['codec', 'link/wire'],
  'link/verbs': ['codec', 'link/wire', 'link/fabric'],
  'link/ipoib': ['codec', 'link/wire', 'link/fabric', 'link/verbs'],
  'link/ha': ['codec', ...LINK.slice(0, 4)],
  'link/kernel': ['codec', 'link/wire', 'link/ipoib'],
  'protocol': ['codec'],
  'lease-db': ['codec', 'protocol'],
  'server': ['codec', 'protocol', 'lease-db', ...LINK],
  'client': ['codec', 'protocol', ...LINK],
  'boot': ['codec', 'protocol', 'client', ...LINK],
  'bin': ['codec', 'protocol', 'lease-db', 'server', 'client', 'boot', ...LINK],
};

function layerOf(file: string): string | undefined {
  const rel = relative(root, file).split(sep).join('/');
  return Object.keys(ALLOWED).filter((l) => rel === l || rel.startsWith(l + '/'))
    .sort((a, b) => b.length - a.length)[0];
}

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.(ts|js|mjs)$/.test(name) || !name.includes('.')) yield p;
  }
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

export function violations(files: Iterable<string>): string[] {
  const out: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    if (from === undefined) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      if (spec === undefined || !spec.startsWith('.')) continue;
      const to = layerOf(resolve(dirname(file), spec));
      if (to === undefined || to === from) continue;
      if (!(ALLOWED[from] ?? []).includes(to)) {
        out.push(`${relative(root, file)} imports ${spec} (${from} -> ${to})`);
      }
    }
  }
  return out;
}

t.test('no folder imports one above it', async (t) => {
  const files = Object.keys(ALLOWED).flatMap((l) => {
    try { return [...sources(join(root, l))]; } catch { return []; }
  });
  t.ok(files.length > 0, `checked ${files.length} source files`);
  t.same(violations(files), [], 'layering violations');
});

t.test('the checker itself catches a violation', async (t) => {
  const { mkdtempSync, writeFileSync, mkdirSync, rmSync } = await import('node:fs');
  // Files must sit under the real root for layerOf(); use a throwaway folder inside protocol/.
  const tmp = mkdtempSync(join(root, 'protocol', '.layering-'));
  try {
    const bad = join(tmp, 'bad.ts');
    writeFileSync(bad, "import { x } from '../../link/ipoib/interface.js';\nimport { y } from '../../codec/wire-error.js';\n");
    mkdirSync(join(root, 'server', '.layering-probe'), { recursive: true });
    const bad2 = join(root, 'server', '.layering-probe', 'bad.ts');
    writeFileSync(bad2, "export { c } from '../../client/engine.js';\n");
    const v = violations([bad, bad2]);
    t.equal(v.length, 2, 'protocol -> link and server -> client are both reported, codec is allowed');
    t.match(v[0], /protocol -> link\/ipoib/);
    t.match(v[1], /server -> client/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(join(root, 'server', '.layering-probe'), { recursive: true, force: true });
  }
});
