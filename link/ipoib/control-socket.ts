// A Host's control socket, the channel `ipoib` uses as `ip` uses netlink: a UNIX stream socket
// <runtime dir>/<host>.sock (0600, in a 0700 directory) carrying newline-delimited JSON,
//
//   request  {"id": 7, "cmd": "link.set", "args": {"dev": "ib0", "mtu": 65520}}
//   answer   {"id": 7, "ok": true, "result": null}
//            {"id": 7, "ok": false, "error": {"code": "EINVAL", "message": "ib0: MTU 70000 is out of range ..."}}
//
// Requests on one connection may overlap (a ping takes seconds); answers carry the request's id.
// Nothing a client sends can stop the host: bad lines get an error answer, oversized lines close
// that connection. A socket file left by a host that died is replaced; a live one is not.
import { lstatSync, mkdirSync, readdirSync, unlinkSync, chmodSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Host } from './host.js';
import { ControlError, dispatch, type ControlApi, type ControlCommand, type ControlErrorCode } from './control-commands.js';

export { ControlError, type ControlErrorCode } from './control-commands.js';

/** Longest request line accepted; requests are a few hundred bytes. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Longest answer line the client accepts (a host with thousands of neighbours stays well below). */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Linux sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface ControlRequest {
  id?: number | string;
  cmd: string;
  args?: Record<string, unknown>;
}

export type ControlResponse =
  | { id?: number | string; ok: true; result: unknown }
  | { id?: number | string; ok: false; error: { code: ControlErrorCode; message: string } };

/**
 * Where control sockets live: $IPOIB_RUNTIME_DIR if set, else $XDG_RUNTIME_DIR/ipoib, else
 * /run/ipoib for root and /tmp/ipoib-$UID for anyone else.
 */
export function defaultRuntimeDir(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? -1): string {
  if (env['IPOIB_RUNTIME_DIR']) return env['IPOIB_RUNTIME_DIR'];
  if (env['XDG_RUNTIME_DIR']) return join(env['XDG_RUNTIME_DIR'], 'ipoib');
  return uid === 0 ? '/run/ipoib' : `/tmp/ipoib-${uid}`;
}

/** Host names become file names: letters, digits, '.', '_' and '-', at most 64, not starting with a dot. */
export function checkHostName(name: string): string {
  if (!HOST_NAME.test(name)) throw new ControlError('EINVAL', `host name "${name}" must be 1-64 of [A-Za-z0-9._-], starting with a letter or digit`);
  return name;
}

export function socketPath(hostName: string, dir: string = defaultRuntimeDir()): string {
  const p = join(dir, `${checkHostName(hostName)}.sock`);
  if (Buffer.byteLength(p) > MAX_SOCKET_PATH_BYTES) {
    throw new ControlError('EINVAL', `control socket path ${p} is longer than ${MAX_SOCKET_PATH_BYTES} bytes (choose a shorter runtime directory)`);
  }
  return p;
}

/** The host names with a socket file in dir (live or not). */
export function listHosts(dir: string = defaultRuntimeDir()): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.sock') && HOST_NAME.test(n.slice(0, -5))).map((n) => n.slice(0, -5)).sort();
}

/** Creates the runtime directory (0700) and refuses one another user could write into. */
export function ensureRuntimeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ControlError('EIO', `runtime directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new ControlError('EIO', `runtime directory ${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new ControlError('EIO', `runtime directory ${dir} belongs to uid ${st.uid}, not ${uid}`);
  if ((st.mode & 0o022) !== 0) throw new ControlError('EIO', `runtime directory ${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)})`);
}

/** Connects to path; resolves true when something accepts, false when nothing listens there. */
function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function clearStale(path: string): Promise<boolean> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return false;
  }
  if (!st.isSocket()) throw new ControlError('EEXIST', `${path} exists and is not a socket; not replacing it`);
  if (await isAlive(path)) throw new ControlError('EADDRINUSE', `${path}: another host is serving this socket`);
  unlinkSync(path);
  return true;
}

export interface ControlServerOptions {
  /** Runtime directory (default defaultRuntimeDir()); the socket is <dir>/<host name>.sock. */
  dir?: string;
  /** Exact socket path instead of dir + name. */
  path?: string;
  /** Reports what a log should show: stale sockets replaced, bad requests, unexpected failures. */
  onEvent?: (e: ControlEvent) => void;
}

export type ControlEvent =
  | { type: 'stale_socket_removed'; path: string }
  | { type: 'bad_request'; code: ControlErrorCode; message: string }
  | { type: 'unexpected_error'; cmd: string; error: unknown };

export class ControlServer {
  private readonly conns = new Set<Socket>();
  private ino = 0;
  private closed = false;

  private constructor(readonly host: Host, readonly path: string, private readonly server: Server, private readonly onEvent: (e: ControlEvent) => void) {}

  /** Serves `host` on its socket; rejects (ControlError) when another live host holds the path. */
  static async listen(host: Host, opts: ControlServerOptions = {}): Promise<ControlServer> {
    const dir = opts.dir ?? defaultRuntimeDir();
    const path = opts.path ?? socketPath(host.name, dir);
    if (opts.path === undefined) ensureRuntimeDir(dir);
    const onEvent = opts.onEvent ?? (() => undefined);
    if (await clearStale(path)) onEvent({ type: 'stale_socket_removed', path });
    const server = createServer();
    const cs = new ControlServer(host, path, server, onEvent);
    server.on('connection', (s) => cs.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new ControlError(err.code === 'EADDRINUSE' ? 'EADDRINUSE' : 'EIO', `${path}: ${err.code ?? err.message}`)));
      server.listen(path, () => resolve());
    });
    server.on('error', () => undefined);
    chmodSync(path, 0o600);
    cs.ino = lstatSync(path).ino;
    return cs;
  }

  get connections(): number {
    return this.conns.size;
  }

  private serve(s: Socket): void {
    this.conns.add(s);
    s.on('close', () => this.conns.delete(s));
    // A client that went away mid-answer is not the host's problem.
    s.on('error', () => undefined);
    s.setEncoding('utf8');
    let buf = '';
    s.on('data', (chunk: string) => {
      if (s.writableEnded) return;
      buf += chunk;
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl < 0) break;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim().length > 0) void this.handle(s, line);
      }
      if (Buffer.byteLength(buf) > MAX_REQUEST_BYTES) {
        const message = `request longer than ${MAX_REQUEST_BYTES} bytes`;
        this.onEvent({ type: 'bad_request', code: 'E2BIG', message });
        this.reply(s, { ok: false, error: { code: 'E2BIG', message } });
        buf = '';
        s.end();
        // A client that never closes its side does not keep the connection.
        setTimeout(() => s.destroy(), 1000).unref();
      }
    });
  }

  private async handle(s: Socket, line: string): Promise<void> {
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch {
      this.badRequest(s, undefined, 'EBADMSG', 'request is not JSON');
      return;
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      this.badRequest(s, undefined, 'EBADMSG', 'request is not a JSON object {"cmd", "args"}');
      return;
    }
    const r = req as Record<string, unknown>;
    const id = typeof r['id'] === 'number' || typeof r['id'] === 'string' ? r['id'] : undefined;
    try {
      const result = await dispatch(this.host, r['cmd'], r['args'], (error) => {
        this.onEvent({ type: 'unexpected_error', cmd: String(r['cmd']), error });
      });
      this.reply(s, { ...(id !== undefined ? { id } : {}), ok: true, result: result ?? null });
    } catch (err) {
      const e = err as ControlError;
      if (e.code === 'ENOSYS' || e.code === 'EBADMSG') this.onEvent({ type: 'bad_request', code: e.code, message: e.message });
      this.reply(s, { ...(id !== undefined ? { id } : {}), ok: false, error: { code: e.code, message: e.message } });
    }
  }

  private badRequest(s: Socket, id: number | string | undefined, code: ControlErrorCode, message: string): void {
    this.onEvent({ type: 'bad_request', code, message });
    this.reply(s, { ...(id !== undefined ? { id } : {}), ok: false, error: { code, message } });
  }

  private reply(s: Socket, r: ControlResponse): void {
    if (s.destroyed || !s.writable) return;
    let line: string;
    try {
      line = JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
    } catch (err) {
      line = JSON.stringify({ id: r.id, ok: false, error: { code: 'EIO', message: `answer not serialisable: ${(err as Error).message}` } });
    }
    s.write(line + '\n');
  }

  /** Stops listening, drops the connections and removes the socket file (if it is still ours). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.conns) s.destroy();
    await done;
    try {
      if (lstatSync(this.path).ino === this.ino) unlinkSync(this.path);
    } catch {
      // Already gone (node removes it on close).
    }
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** The CLI's side: one connection, requests with ids, answers matched to them. */
export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buf = '';
  private failure: ControlError | undefined;

  private constructor(readonly path: string, private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(new ControlError('EIO', `${path}: ${err.code ?? err.message}`)));
    socket.on('close', () => this.fail(new ControlError('EIO', `${path}: the host closed the connection`)));
  }

  /** Connects; a missing or dead socket is ENOHOST with a message naming the path. */
  static connect(path: string, timeoutMs = 5000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      const t = setTimeout(() => { s.destroy(); reject(new ControlError('ETIMEDOUT', `${path}: no answer within ${timeoutMs} ms`)); }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        s.removeAllListeners('error');
        resolve(new ControlClient(path, s));
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(t);
        const why = err.code === 'ENOENT' ? 'no such socket' : err.code === 'ECONNREFUSED' ? 'nothing listening (stale socket)' : err.code ?? err.message;
        reject(new ControlError('ENOHOST', `no host at ${path}: ${why}`));
      });
    });
  }

  /** Sends one request and waits for its answer; a failed answer rejects with its ControlError. */
  call<K extends ControlCommand>(cmd: K, args: ControlApi[K]['args'], timeoutMs = 10_000): Promise<ControlApi[K]['result']> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlError('ETIMEDOUT', `${this.path}: no answer to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(JSON.stringify({ id, cmd, args }) + '\n');
    });
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.onLine(line);
    }
    if (this.buf.length > MAX_RESPONSE_BYTES) this.fail(new ControlError('EPROTO', `${this.path}: answer longer than ${MAX_RESPONSE_BYTES} bytes`));
  }

  private onLine(line: string): void {
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      this.fail(new ControlError('EPROTO', `${this.path}: answer is not JSON`));
      return;
    }
    const m = r as Record<string, unknown> | null;
    if (typeof m !== 'object' || m === null || typeof m['id'] !== 'number') {
      // An answer without an id is the server refusing the connection as a whole (E2BIG).
      const e = m?.['error'] as { code?: ControlErrorCode; message?: string } | undefined;
      this.fail(new ControlError(e?.code ?? 'EPROTO', e?.message ?? `${this.path}: answer without id`));
      return;
    }
    const p = this.pending.get(m['id']);
    if (p === undefined) return;
    this.pending.delete(m['id']);
    clearTimeout(p.timer);
    if (m['ok'] === true) {
      p.resolve(m['result']);
      return;
    }
    const e = m['error'] as { code?: unknown; message?: unknown } | undefined;
    p.reject(new ControlError(typeof e?.code === 'string' ? e.code as ControlErrorCode : 'EPROTO', typeof e?.message === 'string' ? e.message : 'error without a message'));
  }

  private fail(e: ControlError): void {
    if (this.failure !== undefined) return;
    this.failure = e;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    this.socket.destroy();
  }
}

/** One request on a fresh connection. */
export async function controlCall<K extends ControlCommand>(path: string, cmd: K, args: ControlApi[K]['args'], timeoutMs = 10_000): Promise<ControlApi[K]['result']> {
  const c = await ControlClient.connect(path, Math.min(timeoutMs, 5000));
  try {
    return await c.call(cmd, args, timeoutMs);
  } finally {
    c.close();
  }
}
