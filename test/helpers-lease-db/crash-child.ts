// Crash-test child: allocates leases from a SQLite store as fast as it can, 64 in flight, and
// writes one line "<address> <client hex>" to stdout (synchronously, a pipe) for each allocation
// whose promise resolved, i.e. that the store reported durable. The parent kills it with SIGKILL.
// Usage: node --import tsx crash-child.ts FILE RUN [main|worker]   (then a line on stdin to start);
// 'worker' runs the store on its worker thread (lease-db/sqlite-worker-store.ts).
import { once } from 'node:events';
import { writeSync } from 'node:fs';
import { openSqliteStore } from '../../lease-db/sqlite-store.js';
import { openSqliteWorkerStore } from '../../lease-db/sqlite-worker-store.js';

const [file, run, thread] = process.argv.slice(2);
// The parent starts children ahead of time (Node + tsx take about a second to start) and lets
// each one touch the database only when the previous one is dead: it writes a line to our stdin.
await once(process.stdin, 'data');
const store = thread === 'worker' ? await openSqliteWorkerStore(file!) : await openSqliteStore(file!);
await store.configurePools([{ id: 1, subnetId: 1, first: 0x0a080000, last: 0x0a08ffff }]);
writeSync(1, 'ready\n');
let n = 0;
const one = async (): Promise<void> => {
  for (;;) {
    const client = Buffer.alloc(8);
    client.writeUInt32BE(Number(run), 0);
    client.writeUInt32BE(n++, 4);
    const l = await store.allocate({ poolId: 1, clientId: client, state: 'bound', lifetime: 3600, now: 1_800_000_000, server: 'crash' });
    writeSync(1, `${l.address} ${client.toString('hex')}\n`);
  }
};
await Promise.all(Array.from({ length: 64 }, one));
