// The control socket: Kea's management API (Kea ARM "Management API", lease_cmds and stat_cmds
// hooks) on a UNIX stream socket named by the config's control-socket. One JSON request per
// connection, {"command": ..., "arguments": {...}}; one JSON answer, {"result", "text", "arguments"},
// then the server closes the connection. Result codes as Kea's: 0 success, 1 error, 2 unsupported
// command, 3 empty (nothing found).
//
// Commands: list-commands, lease4-get (by ip-address; or identifier-type client-id / port-guid /
// hw-address with identifier and, for client-id, subnet-id), lease4-get-all (optionally by subnets),
// lease4-del (ip-address), statistic-get-all, config-reload.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { formatGuid, fromColonHex, parseGuid, toColonHex } from '../lease-db/address.js';
import type { Lease } from '../lease-db/lease.js';
import { allLeases } from '../lease-db/transfer.js';
import { ipv4ToString, parseClientIdText, tryParseIpv4 } from '../protocol/index.js';
import type { ServerDaemon } from './daemon.js';

export interface ControlResponse {
  result: 0 | 1 | 2 | 3;
  text: string;
  arguments?: Record<string, unknown>;
}

export const CONTROL_COMMANDS = [
  'config-reload', 'lease4-del', 'lease4-get', 'lease4-get-all', 'list-commands', 'statistic-get-all',
] as const;

/** Requests larger than this are refused (a lease4-get is ~100 bytes). */
const MAX_REQUEST_BYTES = 64 * 1024;
const REQUEST_TIMEOUT_MS = 10_000;

/** Kea's lease4 JSON, plus our IPoIB fields (port-guid, the 20-byte address, our state name). */
export function leaseToKea(l: Lease): Record<string, unknown> {
  return {
    'ip-address': ipv4ToString(l.address),
    'hw-address': l.hwaddr === null ? '' : toColonHex(l.hwaddr),
    'client-id': l.clientId === null ? '' : toColonHex(l.clientId),
    'subnet-id': l.subnetId,
    cltt: l.start,
    'valid-lft': Math.max(0, l.expiry - l.start),
    hostname: l.hostname ?? '',
    'fqdn-fwd': false,
    'fqdn-rev': false,
    // Kea: 0 default, 1 declined, 2 expired-reclaimed.
    state: l.state === 'declined' ? 1 : l.state === 'released' || l.state === 'expired' ? 2 : 0,
    'ipoib-state': l.state,
    'port-guid': l.portGuid === null ? '' : formatGuid(l.portGuid),
    'ipoib-hw-address': l.hwaddr === null ? '' : toColonHex(l.hwaddr),
  };
}

/** Kea's stat_cmds shape: each statistic is a list of [value, timestamp] samples (we keep one). */
function statistics(d: ServerDaemon, stamp: string): Record<string, [number, string][]> {
  const out: Record<string, [number, string][]> = {};
  const put = (name: string, v: number): void => { out[name] = [[v, stamp]]; };
  const s = d.stats;
  put('pkt4-received', Object.values(s.received).reduce((a, b) => a + b, 0));
  for (const [k, v] of Object.entries(s.received)) put(`pkt4-${k}-received`, v);
  put('pkt4-sent', Object.values(s.sent).reduce((a, b) => a + b, 0));
  for (const [k, v] of Object.entries(s.sent)) put(`pkt4-${k}-sent`, v);
  put('pkt4-receive-drop', Object.values(s.drops).reduce((a, b) => a + (b ?? 0), 0));
  for (const [k, v] of Object.entries(s.drops)) put(`pkt4-drop-${k}`, v ?? 0);
  put('lease4-commits', s.commits);
  put('config-reloads', s.reloads);
  put('lease-database-outages', s.dbOutages);
  return out;
}

function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '000');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Runs one command against the daemon (what the socket does for each request). */
export async function runCommand(d: ServerDaemon, request: unknown): Promise<ControlResponse> {
  if (!isObject(request) || typeof request['command'] !== 'string') {
    return { result: 1, text: 'invalid command: expected {"command": "...", "arguments": {...}}' };
  }
  const cmd = request['command'];
  const args = isObject(request['arguments']) ? request['arguments'] : {};
  switch (cmd) {
    case 'list-commands':
      return { result: 0, text: `${CONTROL_COMMANDS.length} commands supported`, arguments: { commands: [...CONTROL_COMMANDS] } };
    case 'lease4-get': return lease4Get(d, args);
    case 'lease4-get-all': {
      const subnets = args['subnets'];
      if (subnets !== undefined && (!Array.isArray(subnets) || !subnets.every((x) => Number.isInteger(x)))) {
        return { result: 1, text: "'subnets' must be a list of subnet ids" };
      }
      const want = subnets === undefined ? null : new Set(subnets as number[]);
      const leases: Record<string, unknown>[] = [];
      for await (const l of allLeases(d.store)) if (want === null || want.has(l.subnetId)) leases.push(leaseToKea(l));
      return { result: leases.length === 0 ? 3 : 0, text: `${leases.length} IPv4 lease(s) found.`, arguments: { leases } };
    }
    case 'lease4-del': {
      const a = typeof args['ip-address'] === 'string' ? tryParseIpv4(args['ip-address']) : null;
      if (a === null) return { result: 1, text: "'ip-address' must be an IPv4 address" };
      const deleted = await d.store.delete(a);
      // The engine forgets it too, so the address is free for the next client at once.
      d.engine.resync(a, null, Date.now());
      return deleted ? { result: 0, text: 'IPv4 lease deleted.' } : { result: 3, text: 'IPv4 lease not found.' };
    }
    case 'statistic-get-all':
      return { result: 0, text: 'Statistics retrieved.', arguments: statistics(d, timestamp(Date.now())) };
    case 'config-reload': {
      const r = await d.reload();
      return r.ok ? { result: 0, text: 'Configuration successful.' } : { result: 1, text: `Configuration not reloaded: ${r.error}` };
    }
    default:
      return { result: 2, text: `'${cmd}' command not supported.` };
  }
}

async function lease4Get(d: ServerDaemon, args: Record<string, unknown>): Promise<ControlResponse> {
  const found = (l: Lease | null | undefined): ControlResponse => l === null || l === undefined
    ? { result: 3, text: 'Lease not found.' }
    : { result: 0, text: 'IPv4 lease found.', arguments: leaseToKea(l) };
  if (typeof args['ip-address'] === 'string') {
    const a = tryParseIpv4(args['ip-address']);
    if (a === null) return { result: 1, text: `'${args['ip-address']}' is not an IPv4 address` };
    return found(await d.store.get(a));
  }
  const type = args['identifier-type'];
  const id = args['identifier'];
  if (typeof type !== 'string' || typeof id !== 'string') {
    return { result: 1, text: "lease4-get needs 'ip-address', or 'identifier-type' and 'identifier'" };
  }
  switch (type) {
    case 'client-id': {
      const subnet = args['subnet-id'];
      if (!Number.isInteger(subnet)) return { result: 1, text: "identifier-type client-id needs 'subnet-id'" };
      let cid: Buffer;
      try { cid = parseClientIdText(id); } catch (err) { return { result: 1, text: `'${id}' is not a client identifier: ${(err as Error).message}` }; }
      return found(await d.store.getByClientId(subnet as number, cid));
    }
    case 'port-guid': {
      const g = parseGuid(id);
      if (g === null) return { result: 1, text: `'${id}' is not a port GUID` };
      return found((await d.store.getByPortGuid(g))[0]);
    }
    case 'hw-address': case 'ipoib-hw-address': {
      const hw = fromColonHex(id);
      if (hw === null || hw.length !== 20) return { result: 1, text: `'${id}' is not a 20-byte IPoIB hardware address` };
      return found((await d.store.getByHwaddr(hw))[0]);
    }
    default:
      return { result: 1, text: `identifier-type '${type}' is not supported (client-id, port-guid, hw-address)` };
  }
}

export class ControlSocket {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(readonly path: string, private readonly daemon: ServerDaemon, server: Server) {
    this.server = server;
  }

  /** Listens on `path` (a stale socket file there is replaced). */
  static listen(path: string, daemon: ServerDaemon): Promise<ControlSocket> {
    rmSync(path, { force: true });
    let cs: ControlSocket | null = null;
    const server = createServer((sock) => cs?.serve(sock));
    cs = new ControlSocket(path, daemon, server);
    const ready = cs;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => { server.off('error', reject); resolve(ready); });
    });
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.setTimeout(REQUEST_TIMEOUT_MS, () => sock.destroy());
    let text = '';
    let answered = false;
    const answer = (r: ControlResponse): void => {
      if (answered) return;
      answered = true;
      sock.end(JSON.stringify(r));
    };
    const tryRun = (final: boolean): void => {
      let req: unknown;
      try { req = JSON.parse(text); } catch {
        if (final) answer({ result: 1, text: 'invalid JSON request' });
        return;
      }
      runCommand(this.daemon, req).then(answer, (err: unknown) => answer({ result: 1, text: (err as Error).message ?? String(err) }));
    };
    sock.on('data', (b: Buffer) => {
      if (answered) return;
      text += b.toString('utf8');
      if (text.length > MAX_REQUEST_BYTES) { answer({ result: 1, text: `request larger than ${MAX_REQUEST_BYTES} bytes` }); return; }
      tryRun(false);
    });
    sock.on('end', () => { if (!answered) tryRun(true); });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => { rmSync(this.path, { force: true }); resolve(); }));
  }
}

/** Sends one command to a control socket and returns the answer (the tests' and scripts' client). */
export function sendControlCommand(path: string, command: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let text = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer from ${path} within ${timeoutMs} ms`)); }, timeoutMs);
    sock.on('connect', () => sock.write(JSON.stringify(args === undefined ? { command } : { command, arguments: args })));
    sock.on('data', (b: Buffer) => { text += b.toString('utf8'); });
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
    sock.on('close', () => {
      clearTimeout(timer);
      try { resolve(JSON.parse(text) as ControlResponse); } catch { reject(new Error(`bad answer from ${path}: ${text.slice(0, 200)}`)); }
    });
  });
}
