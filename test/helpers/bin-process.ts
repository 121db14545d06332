// Runs one of our bin/ programs as a child process for multi-process tests, with its output split into
// lines and bounded waits. tap re-adds its loader hooks (NODE_OPTIONS) to every child it sees, and they
// break the tsx bin shim (ERR_REQUIRE_CYCLE_MODULE), so the child is started through `env -u NODE_OPTIONS`.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface BinProcess {
  child: ChildProcess;
  out: string[];
  err: string[];
  /** Resolves with the first line (stdout, or stderr when asked) matching re; rejects after ms or on exit. */
  line(re: RegExp, ms: number, stream?: 'out' | 'err'): Promise<RegExpExecArray>;
  exited(ms: number): Promise<{ code: number | null; signal: string | null }>;
}

/** Starts bin/<bin> with args; the child is added to `children` so a teardown can kill what is left. */
export function startBin(bin: string, args: string[], children: ChildProcess[], env: NodeJS.ProcessEnv = process.env): BinProcess {
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(root, 'bin', bin), ...args],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const out: string[] = [];
  const err: string[] = [];
  const waiters: (() => void)[] = [];
  const lines = (into: string[]) => {
    let buf = '';
    return (d: Buffer) => {
      buf += d.toString('utf8');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) { into.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
      for (const w of waiters) w();
    };
  };
  child.stdout!.on('data', lines(out));
  child.stderr!.on('data', lines(err));
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('exit', (code, signal) => {
    r({ code, signal });
    for (const w of waiters) w();
  }));
  const tail = (): string => err.slice(-5).map((l) => l.slice(0, 300)).join(' | ');
  return {
    child, out, err,
    line(re, ms, stream = 'out') {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${bin}: no line matching ${re} within ${ms} ms; stderr: ${tail()}`)), ms);
        const check = (): void => {
          for (const l of stream === 'out' ? out : err) {
            const m = re.exec(l);
            if (m !== null) { clearTimeout(timer); resolve(m); return; }
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            reject(new Error(`${bin} exited (${child.exitCode ?? child.signalCode}) before printing ${re}; stderr: ${tail()}`));
          }
        };
        waiters.push(check);
        check();
      });
    },
    exited(ms) {
      return Promise.race([exit, new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`${bin} still running after ${ms} ms`)), ms).unref())]);
    },
  };
}

/** Runs bin/<bin> to completion (bounded), as a shell would, and returns its exit code and output. */
export async function runBin(bin: string, args: string[], children: ChildProcess[], ms = 20_000,
  env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; out: string; err: string }> {
  const p = startBin(bin, args, children, env);
  const { code } = await p.exited(ms);
  return { code, out: p.out.map((l) => `${l}\n`).join(''), err: p.err.map((l) => `${l}\n`).join('') };
}
