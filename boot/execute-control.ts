// The boot service's socket: a running `ipoib-boot` answers `ipoib-boot status|stop`, `ipoib-ha`
// and `ib-bond` on <runtime dir>/<host>.boot.sock, beside the host's own control socket (which
// `ipoib` uses for ip-like commands). Same framing as link/ipoib/control-socket.ts: one JSON object
// per line, {"id", "cmd", "args"} -> {"id", "ok", "result"|"error": {code, message}}.
import { chmodSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Bond, HaError, HaService, type BondOptions, type BondStatus, type HaOptions, type HaStatus } from '../link/ha/index.js';
import { checkHostName, defaultRuntimeDir } from '../link/ipoib/control-socket.js';
import type { BootExecution, BootReport } from './execute.js';

const MAX_LINE = 64 * 1024;

export interface BootApi {
  'boot.status': { args: Record<string, never>; result: BootReport };
  'boot.stop': { args: Record<string, never>; result: null };
  'ha.start': { args: Omit<HaOptions, 'onEvent' | 'link'>; result: HaStatus };
  'ha.stop': { args: Record<string, never>; result: null };
  'ha.status': { args: Record<string, never>; result: HaStatus | null };
  'bond.start': { args: Omit<BondOptions, 'onEvent' | 'link'>; result: BondStatus };
  'bond.stop': { args: { name: string }; result: null };
  'bond.stop-all': { args: Record<string, never>; result: { stopped: string[] } };
  'bond.status': { args: { name: string }; result: BondStatus };
  'bond.status-all': { args: Record<string, never>; result: BondStatus[] };
}
export type BootCommand = keyof BootApi;

export class BootControlError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export function bootSocketPath(hostName: string, dir: string = defaultRuntimeDir()): string {
  return join(dir, `${checkHostName(hostName)}.boot.sock`);
}

/** Runs one command against a live execution (also what the in-process CLI paths call). */
export function bootCommand(ex: BootExecution, cmd: string, args: Record<string, unknown>, onStop: () => void): unknown {
  const host = ex.host;
  switch (cmd) {
    case 'boot.status': return ex.report();
    case 'boot.stop': onStop(); return null;
    case 'ha.start': {
      if (ex.ha !== null && !ex.ha.stopped) throw new HaError('EEXIST', `the HA service already runs (${ex.ha.primary} -> ${ex.ha.secondary})`);
      ex.ha = HaService.start(host, args as HaOptions);
      return ex.ha.status();
    }
    case 'ha.stop': ex.ha?.stop(); return null;
    case 'ha.status': return ex.ha?.status() ?? null;
    case 'bond.start': {
      const o = args as unknown as BondOptions;
      if (ex.bonds.has(o.name) && !ex.bonds.get(o.name)!.stopped) throw new HaError('EEXIST', `${o.name} exists already (ib-bond --stop --bond-name ${o.name} first)`);
      const b = Bond.start(host, o);
      ex.bonds.set(o.name, b);
      return b.status();
    }
    case 'bond.stop': {
      const b = ex.bonds.get(String(args['name']));
      if (b === undefined || b.stopped) throw new HaError('ENOENT', `no bond ${String(args['name'])} on ${host.name}`);
      b.stop();
      ex.bonds.delete(b.name);
      return null;
    }
    case 'bond.stop-all': {
      const names = [...ex.bonds.keys()];
      for (const b of ex.bonds.values()) b.stop();
      ex.bonds.clear();
      return { stopped: names };
    }
    case 'bond.status': {
      const b = ex.bonds.get(String(args['name']));
      if (b === undefined) throw new HaError('ENOENT', `no bond ${String(args['name'])} on ${host.name}`);
      return b.status();
    }
    case 'bond.status-all': return [...ex.bonds.values()].map((b) => b.status());
    default: throw new BootControlError('ENOSYS', `unknown command ${JSON.stringify(cmd)}`);
  }
}

export class BootControlServer {
  private constructor(readonly path: string, private readonly server: Server, private readonly conns: Set<Socket>) {}

  static async listen(ex: BootExecution, path: string, onStop: () => void): Promise<BootControlServer> {
    try { unlinkSync(path); } catch { /* none left over */ }
    const conns = new Set<Socket>();
    const server = createServer((s) => {
      conns.add(s);
      s.setEncoding('utf8');
      let buf = '';
      s.on('close', () => conns.delete(s));
      s.on('error', () => undefined);
      s.on('data', (chunk: string) => {
        buf += chunk;
        if (buf.length > MAX_LINE) { s.destroy(); return; }
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          let id: unknown = null;
          let answer: unknown;
          try {
            const r = JSON.parse(line) as { id?: unknown; cmd?: unknown; args?: unknown };
            id = r.id ?? null;
            const args = (typeof r.args === 'object' && r.args !== null ? r.args : {}) as Record<string, unknown>;
            answer = { id, ok: true, result: bootCommand(ex, String(r.cmd), args, onStop) ?? null };
          } catch (err) {
            const code = (err as { code?: unknown }).code;
            answer = { id, ok: false, error: { code: typeof code === 'string' ? code : 'EINVAL', message: (err as Error).message } };
          }
          s.write(JSON.stringify(answer, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    return new BootControlServer(path, server, conns);
  }

  async close(): Promise<void> {
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.conns) s.destroy();
    await done;
    try { unlinkSync(this.path); } catch { /* gone */ }
  }
}

/** One request to a running ipoib-boot; rejects with BootControlError (ENOHOST when nothing listens). */
export function callBoot<K extends BootCommand>(path: string, cmd: K, args: BootApi[K]['args'], timeoutMs = 10_000): Promise<BootApi[K]['result']> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let buf = '';
    const t = setTimeout(() => { s.destroy(); reject(new BootControlError('ETIMEDOUT', `${path}: no answer to ${cmd} within ${timeoutMs} ms`)); }, timeoutMs);
    s.setEncoding('utf8');
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(t);
      reject(new BootControlError('ENOHOST', `no ipoib-boot at ${path}: ${err.code === 'ENOENT' ? 'no such socket' : err.code === 'ECONNREFUSED' ? 'nothing listening' : err.code ?? err.message}`));
    });
    s.on('connect', () => s.write(JSON.stringify({ id: 1, cmd, args }) + '\n'));
    s.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(t);
      s.end();
      const r = JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: unknown; error?: { code: string; message: string } };
      if (r.ok) resolve(r.result as BootApi[K]['result']);
      else reject(new BootControlError(r.error?.code ?? 'EIO', r.error?.message ?? 'failed'));
    });
  });
}
