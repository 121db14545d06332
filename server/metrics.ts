// Prometheus metrics of the server (prom-client 15, text exposition format 0.0.4): messages received
// and sent by DHCP message type, drops by reason (the closed list, every reason present from the
// start so a rate() never sees a series appear), pool utilisation per subnet and pool (read from
// the lease store at scrape time, so several servers sharing PostgreSQL report the same pools), and
// the latency of lease commits (the time from a message's writes being queued to their being
// durable, which is what a client waits for beyond the engine itself).
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStats } from '../lease-db/lease.js';
import { ALL_DROP_REASONS, type AnyDropReason } from './daemon-drops.js';

/** DHCP message types as metric labels (RFC 2132 §9.6 names, lower case). */
export const MESSAGE_TYPE_LABELS: Record<number, string> = {
  1: 'discover', 2: 'offer', 3: 'request', 4: 'decline', 5: 'ack', 6: 'nak', 7: 'release', 8: 'inform',
};

export interface MetricsSource {
  /** Pool rows and per-subnet totals, as LeaseStore.stats() returns them. */
  poolStats(): Promise<PoolStats[]>;
  /** "10.0.0.0/24" for a subnet id, for the `prefix` label. */
  subnetPrefix(subnetId: number): string;
}

/** Commit latency buckets (seconds): an fsync on a virtio disk is ~0.5-5 ms; PostgreSQL over TCP more. */
const COMMIT_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly received: Counter<'type'>;
  private readonly sent: Counter<'type'>;
  private readonly drops: Counter<'reason'>;
  private readonly commitSeconds: Histogram<string>;
  /** Label children looked up once: prom-client hashes the labels on every labels() call. */
  private readonly receivedByType = new Map<string, { inc(): void }>();
  private readonly sentByType = new Map<string, { inc(): void }>();
  private readonly dropsByReason = new Map<string, { inc(): void }>();
  private server: Server | null = null;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    this.received = new Counter({ name: 'dhcp4_received_total', help: 'DHCP messages received, by message type (none: undecodable or no option 53)', labelNames: ['type'], registers });
    this.sent = new Counter({ name: 'dhcp4_sent_total', help: 'DHCP messages sent, by message type', labelNames: ['type'], registers });
    this.drops = new Counter({ name: 'dhcp4_drops_total', help: 'Received messages not answered, by reason (see DROP_REASONS)', labelNames: ['reason'], registers });
    for (const r of ALL_DROP_REASONS) this.drops.labels(r).inc(0);
    this.commitSeconds = new Histogram({
      name: 'dhcp4_commit_duration_seconds', help: 'Time from queueing a message\'s lease writes to their being durable', buckets: COMMIT_BUCKETS, registers,
    });
    // Both pool gauges are collected concurrently in one scrape: they share one read of the store.
    let last: PoolStats[] = [];
    let reading: Promise<PoolStats[]> | null = null;
    const read = (): Promise<PoolStats[]> => {
      reading ??= source.poolStats().then(
        (s) => { last = s; return s; },
        () => last, // database away: report the last values read
      ).finally(() => { reading = null; });
      return reading;
    };
    const labels = (s: PoolStats): { subnet: string; prefix: string; pool: string } =>
      ({ subnet: String(s.subnetId), prefix: source.subnetPrefix(s.subnetId), pool: s.poolId === undefined ? 'all' : String(s.poolId) });
    new Gauge({
      name: 'dhcp4_pool_addresses', help: 'Addresses of each pool (pool="all": the subnet) by state: total, assigned (offered or bound), declined, free',
      labelNames: ['subnet', 'prefix', 'pool', 'state'], registers,
      async collect() {
        this.reset();
        for (const s of await read()) {
          const l = labels(s);
          this.labels({ ...l, state: 'total' }).set(s.total);
          this.labels({ ...l, state: 'assigned' }).set(s.assigned);
          this.labels({ ...l, state: 'declined' }).set(s.declined);
          this.labels({ ...l, state: 'free' }).set(s.free);
        }
      },
    });
    new Gauge({
      name: 'dhcp4_pool_utilisation_ratio', help: 'Share of each pool\'s addresses that are assigned or declined (pool="all": the subnet)',
      labelNames: ['subnet', 'prefix', 'pool'], registers,
      async collect() {
        this.reset();
        for (const s of await read()) this.labels(labels(s)).set(s.total === 0 ? 0 : (s.assigned + s.declined) / s.total);
      },
    });
  }

  /** One received datagram; `type` is its option 53 value, undefined when it had none or did not decode. */
  receivedMessage(type: number | undefined): void {
    const label = type === undefined ? 'none' : MESSAGE_TYPE_LABELS[type] ?? `type-${type}`;
    let c = this.receivedByType.get(label);
    if (c === undefined) { c = this.received.labels(label); this.receivedByType.set(label, c); }
    c.inc();
  }

  sentMessage(type: number | undefined): void {
    const label = type === undefined ? 'none' : MESSAGE_TYPE_LABELS[type] ?? `type-${type}`;
    let c = this.sentByType.get(label);
    if (c === undefined) { c = this.sent.labels(label); this.sentByType.set(label, c); }
    c.inc();
  }

  dropped(reason: AnyDropReason): void {
    let c = this.dropsByReason.get(reason);
    if (c === undefined) { c = this.drops.labels(reason); this.dropsByReason.set(reason, c); }
    c.inc();
  }

  commitDuration(seconds: number): void {
    this.commitSeconds.observe(seconds);
  }

  /** The exposition text (what GET /metrics returns). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Serves GET /metrics on host:port (port 0: any free port); resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics\n');
        return;
      }
      this.text().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
      );
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const a = server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s === null) return Promise.resolve();
    return new Promise((resolve) => { s.close(() => resolve()); s.closeAllConnections(); });
  }
}
