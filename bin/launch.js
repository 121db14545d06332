// Runs bin/<name>.ts from a checkout with no build step to remember. Each bin/<name> shim calls
// launch(name); <name>.ts exports main(argv) -> exit code.
//
// The package's TypeScript is compiled once into .build/<key>/ (esbuild, one output file per source,
// no bundling, so every relative import and import.meta.url keeps its meaning) and later runs import
// that tree. The key hashes the path, size and mtime of every source file, so an edited checkout gets
// a fresh tree on its next run and a tree is never rewritten while a process may be loading from it.
// Why: a process that starts through tsx's loader hooks spends ~0.45 s before main() (the loader, and
// a transform per module); from the compiled tree it spends ~0.2 s. ipoib-cluster --fabric spawn
// starts a fabric daemon, a server and a process per host group, and restarts the server on every
// --kill-server-every, so start-up is on its critical path.
// If the tree cannot be written (a read-only checkout, esbuild missing), or IPOIB_TSX=1, the program
// runs through tsx exactly as before.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
/** The folders whose .ts files the programs import at run time (DESIGN.md's layers and bin/). */
const SOURCE_DIRS = ['codec', 'link', 'protocol', 'lease-db', 'server', 'client', 'boot', 'bin'];
const BUILD_DIR = join(ROOT, '.build');
/** A tree no program started from for this long is removed when a new tree is written. */
const STALE_TREE_MS = 24 * 3600_000;

export async function launch(name) {
  const supervised = exitWithParent();
  const dir = process.env.IPOIB_TSX === '1' ? undefined : await compiledTree();
  let mod;
  if (dir === undefined) {
    const { register } = await import('tsx/esm/api');
    register();
    mod = await import(new URL(`./${name}.ts`, import.meta.url).href);
  } else {
    process.setSourceMapsEnabled(true);
    mod = await import(pathToFileURL(join(dir, 'bin', `${name}.js`)).href);
  }
  const code = await mod.main(process.argv.slice(2));
  if (typeof code === 'number') process.exitCode = code;
  // main() is done: the watched stdin must not keep the process alive.
  if (supervised) process.stdin.destroy();
}

/**
 * IPOIB_EXIT_WITH_PARENT=1 (set by ipoib-cluster for the fabric daemon and the server it spawns):
 * stdin is a pipe from the supervisor, and its end means the supervisor is gone, however it went
 * (SIGKILL included); the program then stops as on SIGTERM (a server finishes its in-flight commits).
 * Node has no prctl(PR_SET_PDEATHSIG); a pipe's end is the portable equivalent. Not inherited.
 */
function exitWithParent() {
  if (process.env.IPOIB_EXIT_WITH_PARENT !== '1') return false;
  delete process.env.IPOIB_EXIT_WITH_PARENT;
  const stop = () => process.kill(process.pid, 'SIGTERM');
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  return true;
}

/** Every source file (relative path), sorted, with its stat: the input of the key. */
function sources() {
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const d of SOURCE_DIRS) if (existsSync(join(ROOT, d))) walk(join(ROOT, d));
  return out.sort();
}

/** The compiled tree for the checkout as it is now, written first if it is missing; undefined: use tsx. */
async function compiledTree() {
  try {
    const files = sources();
    const h = createHash('sha256');
    for (const f of files) {
      const s = statSync(f);
      h.update(`${relative(ROOT, f)}\0${s.size}\0${s.mtimeMs}\n`);
    }
    const key = h.digest('hex').slice(0, 16);
    const dir = join(BUILD_DIR, key);
    if (existsSync(join(dir, '.complete'))) {
      touch(dir);
      return dir;
    }
    const { build } = await import('esbuild');
    // Written aside and renamed into place: concurrent first runs each build, one rename wins.
    const tmp = join(BUILD_DIR, `.tmp-${key}-${process.pid}`);
    await build({
      entryPoints: files, outdir: tmp, outbase: ROOT, bundle: false, format: 'esm', platform: 'node',
      target: 'node20', sourcemap: 'inline', logLevel: 'silent', tsconfig: join(ROOT, 'tsconfig.json'),
    });
    writeFileSync(join(tmp, '.complete'), `${files.length} sources\n`);
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(join(dir, '.complete'))) return undefined;
    }
    prune(key);
    return dir;
  } catch {
    return undefined;
  }
}

/** Marks a tree as in use, for prune(). */
function touch(dir) {
  try {
    const now = new Date();
    utimesSync(dir, now, now);
  } catch {
    // Read-only: nothing prunes it either.
  }
}

/** Removes other trees no program has started from for a day (a running one may still load from a recent one). */
function prune(current) {
  const now = Date.now();
  for (const e of readdirSync(BUILD_DIR, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === current) continue;
    const p = join(BUILD_DIR, e.name);
    try {
      if (now - statSync(p).mtimeMs > STALE_TREE_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // Another process pruned it first.
    }
  }
}
