// Concurrency-test child: one of several processes allocating from the same PostgreSQL pool.
// Prints one line "<address> <client hex>" per acknowledged lease, then "stats <json>".
// Usage: node --import tsx pg-alloc-child.ts URL SCHEMA WORKER COUNT FIRST LAST
import { writeSync } from 'node:fs';
import { openPgStore } from '../../lease-db/pg-store.js';

const [url, schema, worker, count, first, last] = process.argv.slice(2);
const store = await openPgStore({ connectionString: url!, schema: schema!, poolSize: 4 });
await store.configurePools([{ id: 1, subnetId: 1, first: Number(first), last: Number(last) }]);
let n = 0;
const lines: string[] = [];
const one = async (): Promise<void> => {
  while (n < Number(count)) {
    const client = Buffer.alloc(8);
    client.writeUInt32BE(Number(worker), 0);
    client.writeUInt32BE(n++, 4);
    const l = await store.allocate({ poolId: 1, clientId: client, state: 'bound', lifetime: 3600, now: 1_800_000_000, server: `w${worker}` });
    lines.push(`${l.address} ${client.toString('hex')}\n`);
  }
};
const t0 = Date.now();
await Promise.all(Array.from({ length: 8 }, one));
const ms = Date.now() - t0;
writeSync(1, lines.join(''));
writeSync(1, `stats ${JSON.stringify({ ...store.counters, ms })}\n`);
await store.close();
