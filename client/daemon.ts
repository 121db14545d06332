// The client daemon: runs one ClientEngine (engine.ts) per interface and executes its actions —
// datagrams through a DatagramEndpoint (DESIGN.md "The seam between DHCP and the network"; client
// port C, server port C−1 as ISC dhclient -p), the RFC 5227 probe/announce through ArpOps, the lease
// through an InterfaceConfigurator, the dhclient-script hook (dhclient-script(8): variables in the
// environment, no arguments), and the lease file (dhclient.leases(5), replaced atomically).
// Time comes from a Clock, so tests drive the daemon in virtual time.

import { closeSync, fsyncSync, openSync } from 'node:fs';
import { readFile, rename, unlink, writeFile, open } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { spawn } from 'node:child_process';
import type { DatagramEndpoint, DatagramMeta, SocketError } from '../link/ipoib/udp-socket.js';
import { DhcpMessageType, getMessageType, ipv4ToString } from '../protocol/index.js';
import type { ApplyReason, ClientAction, ProbeConfig } from './actions.js';
import type { ClientConfig, RandomSource } from './config.js';
import { mathRandom } from './config.js';
import { ClientEngine } from './engine.js';
import type { ClientLease, MtuDecision } from './lease.js';
import { currentLease, formatLeaseFile, parseLeaseFile } from './lease-file.js';

// ---- ports the daemon is given ------------------------------------------------------------------

/** Wall-clock time in ms since the epoch, and timers on it. */
export interface Clock {
  now(): number;
  /** Calls `fn` once the clock reaches `at`; returns a function that cancels the timer. */
  setTimer(at: number, fn: () => void): () => void;
}

/** setTimeout's limit (2^31−1 ms, ~24.8 days): longer waits are re-armed in steps. */
const MAX_TIMEOUT_MS = 0x7fffffff;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(at, fn) {
    let handle: NodeJS.Timeout;
    const arm = (): void => {
      const wait = at - Date.now();
      if (wait <= 0) { fn(); return; }
      handle = setTimeout(wait > MAX_TIMEOUT_MS ? arm : fn, Math.min(wait, MAX_TIMEOUT_MS));
    };
    arm();
    return () => clearTimeout(handle);
  },
};

/**
 * ARP for the engine's RFC 5227 steps. The IPoIB host implements it with its interface's ARP
 * (20-byte hardware addresses, IPOIB-FACTS §3.6); the kernel transport with iputils arping, or not
 * at all (`arp: null`: the probe is skipped and reported free, with a log line saying so).
 */
export interface ArpOps {
  /** Probes `address` (sender IP 0.0.0.0) with the engine's timing; true when another host claims it. */
  probe(iface: string, address: number, probe: ProbeConfig): Promise<boolean>;
  /** A gratuitous ARP announcing that this host now holds `address`. */
  announce(iface: string, address: number): Promise<void>;
}

/** What an `apply` action carries: the lease, the one it replaces, and whether to set the MTU. */
export interface LeaseChange {
  reason: ApplyReason;
  lease: ClientLease;
  previous: ClientLease | null;
  mtu: MtuDecision;
}

/**
 * Configures an interface from a lease: the kernel through `ip` (client/daemon-kernel.ts), the
 * emulated Host on the project's link. Without one, only the hook script configures anything
 * (ISC dhclient's way).
 */
export interface InterfaceConfigurator {
  /** Before the first transmission: make `iface` able to send 255.255.255.255 from 0.0.0.0. */
  prepare(iface: string): Promise<void>;
  apply(iface: string, change: LeaseChange): Promise<void>;
  deconfigure(iface: string, lease: ClientLease, reason: 'EXPIRE' | 'NAK' | 'RELEASE' | 'DECLINE'): Promise<void>;
}

export interface HookResult {
  /** Exit status; null when killed (timeout or signal). */
  code: number | null;
  output: string;
}

/** Runs the -sf script. The default spawns it with exactly the hook environment plus PATH. */
export interface HookRunner {
  run(script: string, env: Record<string, string>): Promise<HookResult>;
}

/** The pino methods the daemon uses (pino's (object, message) calling form). */
export interface DaemonLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** An endpoint whose sends complete asynchronously can say when they have (kernel-udp does). */
interface Flushable {
  flush(): Promise<void>;
}

function canFlush(e: DatagramEndpoint): e is DatagramEndpoint & Flushable {
  return typeof (e as Partial<Flushable>).flush === 'function';
}

function canReportErrors(e: DatagramEndpoint): e is DatagramEndpoint & { onError(h: (e: SocketError) => void): void } {
  return typeof (e as { onError?: unknown }).onError === 'function';
}

/** ISC dhclient runs its script with only its own variables and a PATH. */
const SCRIPT_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
const HOOK_TIMEOUT_MS = 30_000;
const HOOK_OUTPUT_LIMIT = 16 * 1024;

export const spawnHookRunner: HookRunner = {
  run(script, env) {
    return new Promise((resolve) => {
      let output = '';
      const child = spawn(script, [], {
        env: { ...env, PATH: process.env['PATH'] ?? SCRIPT_PATH }, stdio: ['ignore', 'pipe', 'pipe'], timeout: HOOK_TIMEOUT_MS,
      });
      const take = (b: Buffer): void => { if (output.length < HOOK_OUTPUT_LIMIT) output += b.toString('utf8'); };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      child.on('error', (err) => resolve({ code: null, output: `${script}: ${err.message}` }));
      child.on('close', (code) => resolve({ code, output: output.slice(0, HOOK_OUTPUT_LIMIT) }));
    });
  },
};

const silentLogger: DaemonLogger = { debug() {}, info() {}, warn() {}, error() {} };

// ---- the lease file -----------------------------------------------------------------------------

/**
 * Replaces `file` with `text` so a crash leaves the old or the new file, never a torn one: write
 * a temporary file beside it, fsync, rename over, fsync the directory (rename(2) is atomic within
 * a file system; the directory fsync makes the rename itself durable).
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  try {
    const dir = openSync(dirname(file), 'r');
    try { fsyncSync(dir); } finally { closeSync(dir); }
  } catch {
    // Some file systems refuse fsync on a directory; the rename has happened either way.
  }
}

/** The lease file's blocks, one current lease per interface, in memory; `save` rewrites the file. */
export class LeaseFileStore {
  private leases: ClientLease[] = [];
  constructor(readonly file: string | null, private readonly log: DaemonLogger) {}

  async load(): Promise<void> {
    if (this.file === null) return;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const parsed = parseLeaseFile(text);
    for (const p of parsed.problems) this.log.warn({ event: 'lease-file', file: this.file, line: p.line }, `${this.file}:${p.line}: ${p.message}`);
    const last = new Map<string, ClientLease>();
    for (const l of parsed.leases) last.set(l.interface, currentLease(parsed, l.interface)!);
    this.leases = [...last.values()];
  }

  current(iface: string): ClientLease | null {
    return this.leases.find((l) => l.interface === iface) ?? null;
  }

  async save(iface: string, lease: ClientLease | null): Promise<void> {
    this.leases = this.leases.filter((l) => l.interface !== iface);
    if (lease !== null) this.leases.push(lease);
    if (this.file !== null) await writeFileAtomic(this.file, formatLeaseFile(this.leases));
  }
}

// ---- the daemon ---------------------------------------------------------------------------------

export interface DaemonInterface {
  config: ClientConfig;
  endpoint: DatagramEndpoint;
  /** Where requests go: the client port − 1 (DESIGN.md, port convention). */
  serverPort: number;
  /** null: no ARP on this transport; probes are skipped (reported free) and announcements not sent. */
  arp?: ArpOps | null;
  /** null: only the hook script configures the interface. */
  configurator?: InterfaceConfigurator | null;
}

export interface DaemonOptions {
  interfaces: DaemonInterface[];
  clock?: Clock;
  random?: RandomSource;
  /** -lf. null: leases are kept in memory only. */
  leaseFile?: string | null;
  /** -sf. null: no hook. */
  hookScript?: string | null;
  hookRunner?: HookRunner;
  log?: DaemonLogger;
  /** -1: stop with exit code 2 when an interface gets no lease within its failAfterMs. */
  once?: boolean;
  /** ISC dhclient -s: send what would be broadcast to this server instead (dotted text). */
  server?: string | null;
}

/** Why the daemon ended: 0 stopped, 2 no lease under -1, 1 a runtime failure. */
export interface DaemonExit {
  code: 0 | 1 | 2;
  reason: string;
}

interface Slot {
  engine: ClientEngine;
  spec: DaemonInterface;
  cancelTimer: (() => void) | null;
  timerAt: number;
}

const XID_OFFSET = 4;

export class ClientDaemon {
  readonly slots: Slot[];
  private readonly clock: Clock;
  private readonly log: DaemonLogger;
  private readonly hookRunner: HookRunner;
  private readonly store: LeaseFileStore;
  private chain: Promise<void> = Promise.resolve();
  private readonly background = new Set<Promise<void>>();
  private stopped = false;
  private resolveExit!: (e: DaemonExit) => void;
  /** Settles once: on stop(), on -1 failure, or on a runtime failure. */
  readonly exited: Promise<DaemonExit>;
  /** Hook runs (reason, exit code), for status and tests. */
  readonly hookRuns: { iface: string; reason: string; code: number | null }[] = [];

  constructor(private readonly opts: DaemonOptions) {
    if (opts.interfaces.length === 0) throw new Error('ClientDaemon: no interface');
    const names = opts.interfaces.map((i) => i.config.interface);
    if (new Set(names).size !== names.length) throw new Error(`ClientDaemon: interface named twice (${names.join(', ')})`);
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silentLogger;
    this.hookRunner = opts.hookRunner ?? spawnHookRunner;
    this.store = new LeaseFileStore(opts.leaseFile ?? null, this.log);
    const random = opts.random ?? mathRandom;
    this.slots = opts.interfaces.map((spec) => ({ engine: new ClientEngine(spec.config, random), spec, cancelTimer: null, timerAt: Infinity }));
    this.exited = new Promise((resolve) => { this.resolveExit = resolve; });
  }

  engine(iface: string): ClientEngine {
    const s = this.slots.find((x) => x.spec.config.interface === iface);
    if (s === undefined) throw new Error(`no interface ${iface}`);
    return s.engine;
  }

  /** Reads the lease file, prepares the interfaces, listens, and starts every engine (INIT-REBOOT from a saved lease). */
  async start(): Promise<void> {
    await this.store.load();
    const endpoints = new Map<DatagramEndpoint, Slot[]>();
    for (const s of this.slots) endpoints.set(s.spec.endpoint, [...(endpoints.get(s.spec.endpoint) ?? []), s]);
    for (const [endpoint, slots] of endpoints) {
      endpoint.onMessage((buf, meta) => this.received(slots, buf, meta));
      if (canReportErrors(endpoint)) {
        endpoint.onError((e) => this.log.error({ event: 'socket-error', code: e.code, to: `${e.address}:${e.port}` }, e.message));
      }
    }
    for (const s of this.slots) {
      const iface = s.spec.config.interface;
      if (s.spec.configurator) await s.spec.configurator.prepare(iface);
      if (s.spec.arp === null || s.spec.arp === undefined) {
        this.log.info({ iface, event: 'no-arp' }, `${iface}: no ARP on this transport: the RFC 5227 probe and announcement are skipped`);
      }
    }
    await this.enqueue(async () => {
      for (const s of this.slots) await this.execute(s, s.engine.start(this.clock.now(), this.store.current(s.spec.config.interface)));
    });
  }

  /** Resolves when every queued action (and every background probe/announce) has run. */
  async idle(): Promise<void> {
    for (;;) {
      const chain = this.chain;
      await chain;
      await Promise.all([...this.background]);
      if (chain === this.chain && this.background.size === 0) return;
    }
  }

  /**
   * Orderly stop: `release` sends DHCPRELEASE and deconfigures (dhclient -r), else the lease stays
   * configured and saved (dhclient -x). Settles `exited` with code 0.
   */
  async stop(opts: { release: boolean }): Promise<void> {
    if (this.stopped) return this.idle();
    await this.enqueue(async () => {
      for (const s of this.slots) await this.execute(s, s.engine.stop(this.clock.now(), opts));
    });
    await this.idle();
    this.finish({ code: 0, reason: opts.release ? 'released' : 'stopped' });
    await this.flushAll();
  }

  /**
   * dhclient -r without a running client: DHCPRELEASE for each interface's saved, unexpired lease,
   * deconfigure, RELEASE hook, and the lease removed from the file. Returns how many were released.
   */
  async releaseSaved(): Promise<number> {
    await this.store.load();
    let released = 0;
    await this.enqueue(async () => {
      const now = this.clock.now();
      for (const s of this.slots) {
        const iface = s.spec.config.interface;
        const lease = this.store.current(iface);
        if (lease === null) {
          this.log.info({ iface, event: 'released' }, `${iface}: no saved lease to release`);
          continue;
        }
        if (lease.expiresAt <= now) {
          this.log.info({ iface, event: 'released' }, `${iface}: saved lease on ${ipv4ToString(lease.address)} has expired; removed`);
          await this.store.save(iface, null);
          continue;
        }
        await this.execute(s, s.engine.releaseLease(lease, now, true));
        released++;
      }
    });
    await this.idle();
    await this.flushAll();
    this.finish({ code: 0, reason: 'released' });
    return released;
  }

  private async flushAll(): Promise<void> {
    for (const s of this.slots) if (canFlush(s.spec.endpoint)) await s.spec.endpoint.flush();
  }

  private finish(e: DaemonExit): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.slots) { s.cancelTimer?.(); s.cancelTimer = null; }
    this.resolveExit(e);
  }

  private enqueue(job: () => void | Promise<void>): Promise<void> {
    const next = this.chain.then(job).catch((err: unknown) => {
      this.log.error({ event: 'daemon-error', err: err instanceof Error ? err.message : String(err) }, `daemon failure: ${String(err)}`);
      this.finish({ code: 1, reason: err instanceof Error ? err.message : String(err) });
    });
    this.chain = next;
    return next;
  }

  private received(slots: Slot[], buf: Buffer, meta: DatagramMeta): void {
    if (this.stopped) return;
    const port = slots[0]!.spec.serverPort;
    if (meta.port !== port) {
      this.log.debug({ event: 'drop', reason: 'wrong-source-port', from: `${meta.address}:${meta.port}` },
        `datagram from ${meta.address}:${meta.port} ignored: servers send from port ${port}`);
      return;
    }
    const copy = Buffer.from(buf);
    let target = slots[0]!;
    if (slots.length > 1 && copy.length >= XID_OFFSET + 4) {
      const xid = copy.readUInt32BE(XID_OFFSET);
      target = slots.find((s) => s.engine.currentXid === xid) ?? target;
    }
    void this.enqueue(async () => {
      if (this.stopped) return;
      await this.execute(target, target.engine.handle(copy, this.clock.now()));
    });
  }

  /**
   * Runs one batch of engine actions in the engine's order, awaiting each (an `apply` is in place
   * before its BOUND hook runs, and both before the lease is saved). Probes and announcements run
   * in the background so a slow ARP never holds up the queue.
   */
  private async execute(slot: Slot, actions: ClientAction[]): Promise<void> {
    const iface = slot.spec.config.interface;
    const ordered: (() => Promise<void>)[] = [];
    for (const a of actions) {
      switch (a.kind) {
        case 'send':
          ordered.push(async () => this.send(slot, a.bytes, a.destination.kind === 'broadcast' ? null : a.destination.address, getMessageType(a.message)));
          break;
        case 'probe':
          this.probe(slot, a.address, a.probe);
          break;
        case 'announce':
          ordered.push(async () => this.announce(slot, a.address));
          break;
        case 'apply':
          ordered.push(async () => {
            if (!slot.spec.configurator) return;
            await slot.spec.configurator.apply(iface, { reason: a.reason, lease: a.lease, previous: a.previous, mtu: a.mtu });
            this.log.info({ iface, event: 'applied', reason: a.reason, address: ipv4ToString(a.lease.address), prefix: a.lease.prefixLength },
              `${iface}: configured ${ipv4ToString(a.lease.address)}/${a.lease.prefixLength}${a.mtu.apply ? ` mtu ${a.mtu.mtu}` : ''}`);
          });
          break;
        case 'deconfigure':
          ordered.push(async () => {
            if (canFlush(slot.spec.endpoint)) await slot.spec.endpoint.flush();
            if (!slot.spec.configurator) return;
            await slot.spec.configurator.deconfigure(iface, a.lease, a.reason);
            this.log.info({ iface, event: 'deconfigured', reason: a.reason, address: ipv4ToString(a.lease.address) },
              `${iface}: removed ${ipv4ToString(a.lease.address)} (${a.reason})`);
          });
          break;
        case 'hook':
          ordered.push(async () => this.hook(iface, a.reason, a.env));
          break;
        case 'save-lease':
          ordered.push(async () => this.store.save(iface, a.lease));
          break;
        case 'drop':
          ordered.push(async () => (a.reason === 'xid-mismatch' ? this.log.debug : this.log.info).call(this.log,
            { iface, event: 'drop', reason: a.reason }, `${iface}: reply ignored (${a.reason}): ${a.message}`));
          break;
        case 'log':
          ordered.push(async () => this.log[a.level]({ iface, event: a.event }, `${iface}: ${a.message}`));
          break;
        case 'failed':
          ordered.push(async () => {
            this.log.error({ iface, event: 'failed' }, a.message);
            if (this.opts.once) this.finish({ code: 2, reason: a.message });
          });
          break;
      }
    }
    for (const step of ordered) await step();
    this.rearm(slot);
  }

  private send(slot: Slot, bytes: Buffer, unicast: number | null, type: number | undefined): void {
    const iface = slot.spec.config.interface;
    const to = unicast !== null ? ipv4ToString(unicast) : this.opts.server ?? '255.255.255.255';
    const name = type === undefined ? 'DHCP' : Object.entries(DhcpMessageType).find(([, v]) => v === type)?.[0] ?? `DHCP type ${type}`;
    this.log.info({ iface, event: 'send', type: name, to, port: slot.spec.serverPort, xid: `0x${bytes.readUInt32BE(XID_OFFSET).toString(16).padStart(8, '0')}` },
      `${name} on ${iface} to ${to} port ${slot.spec.serverPort}`);
    try {
      slot.spec.endpoint.send(bytes, to, slot.spec.serverPort, { interface: iface });
    } catch (err) {
      this.log.error({ iface, event: 'socket-error', to }, `${name} on ${iface} to ${to}: ${(err as Error).message}`);
    }
  }

  private probe(slot: Slot, address: number, probe: ProbeConfig): void {
    const iface = slot.spec.config.interface;
    const arp = slot.spec.arp;
    const work = (async (): Promise<void> => {
      let conflict = false;
      if (arp) {
        try {
          conflict = await arp.probe(iface, address, probe);
        } catch (err) {
          this.log.warn({ iface, event: 'probe-failed' }, `${iface}: ARP probe of ${ipv4ToString(address)} failed (${(err as Error).message}): treating it as free`);
        }
      } else {
        this.log.info({ iface, event: 'probe-skipped' }, `${iface}: no ARP on this transport: ${ipv4ToString(address)} not probed`);
      }
      await this.enqueue(async () => {
        if (this.stopped) return;
        await this.execute(slot, slot.engine.probeResult(conflict, this.clock.now()));
      });
    })();
    this.track(work);
  }

  private announce(slot: Slot, address: number): void {
    const iface = slot.spec.config.interface;
    const arp = slot.spec.arp;
    if (!arp) return;
    this.track(arp.announce(iface, address).catch((err: unknown) => {
      this.log.warn({ iface, event: 'announce-failed' }, `${iface}: gratuitous ARP for ${ipv4ToString(address)} failed: ${(err as Error).message}`);
    }));
  }

  private track(p: Promise<void>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  private async hook(iface: string, reason: string, env: Record<string, string>): Promise<void> {
    const script = this.opts.hookScript ?? null;
    if (script === null) return;
    const r = await this.hookRunner.run(script, env);
    this.hookRuns.push({ iface, reason, code: r.code });
    const fields = { iface, event: 'hook', reason, script, code: r.code };
    if (r.code === 0) this.log.debug(fields, `${script} ${reason}: exit 0`);
    else this.log.warn({ ...fields, output: r.output.trim() }, `${script} ${reason}: exit ${r.code ?? 'killed'}${r.output.trim() ? `: ${r.output.trim().split('\n')[0]}` : ''}`);
  }

  /** One timer per engine, at its next deadline. */
  private rearm(slot: Slot): void {
    if (this.stopped) return;
    const at = slot.engine.nextDeadline();
    if (at === slot.timerAt && slot.cancelTimer !== null) return;
    slot.cancelTimer?.();
    slot.cancelTimer = null;
    slot.timerAt = at;
    if (!Number.isFinite(at)) return;
    slot.cancelTimer = this.clock.setTimer(at, () => {
      slot.cancelTimer = null;
      slot.timerAt = Infinity;
      void this.enqueue(async () => {
        if (this.stopped) return;
        await this.execute(slot, slot.engine.poll(this.clock.now()));
      });
    });
  }
}
