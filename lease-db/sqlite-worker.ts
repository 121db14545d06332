// The worker-thread side of SqliteWorkerStore (sqlite-worker-store.ts): one SqliteLeaseStore, its
// connection and its fsyncs on this thread, so the daemon's event loop never waits for the disk.
//
// Each message from the main thread is a batch of calls. They are all started at once, so the
// store's group commit (one transaction per event-loop turn of this thread) takes every write of
// every batch that arrived while the previous transaction was being fsync'd: the batch grows with
// the load exactly as it does on the main thread. One reply per batch, sent when all its calls are
// settled, i.e. its writes are durable.
import { parentPort, workerData } from 'node:worker_threads';
import { isLeaseStoreError } from './errors.js';
import { openSqliteStore, type SqliteLeaseStore, type SqliteOptions } from './sqlite-store.js';
import {
  ECHOED_WRITES, STORE_METHODS, reviveBuffers, type Call, type ErrorInfo, type Reply, type ReplyResult, type StoreMethod, type WorkerInit, type WorkerReady,
} from './sqlite-worker-protocol.js';

const port = parentPort!;
const init = workerData as WorkerInit;

function failure(err: unknown): ErrorInfo {
  if (isLeaseStoreError(err)) {
    const prefix = `${err.location}: `;
    return { code: err.code, location: err.location, detail: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message };
  }
  return { code: 'DB_IO', location: init.file, detail: err instanceof Error ? err.message : String(err) };
}

/** Calls the store, never throwing: a result or the error to send back. */
async function invoke(store: SqliteLeaseStore, call: Call): Promise<ReplyResult> {
  try {
    if (!STORE_METHODS.has(call.method)) throw new Error(`unknown store method ${call.method}`);
    const args = call.args.map(reviveBuffers);
    const fn = store[call.method as StoreMethod] as (...a: unknown[]) => Promise<unknown>;
    const value = await fn.apply(store, args);
    return ECHOED_WRITES.has(call.method) ? { id: call.id } : { id: call.id, value };
  } catch (err) {
    return { id: call.id, error: failure(err) };
  }
}

let store: SqliteLeaseStore | null = null;
try {
  store = await openSqliteStore(init.file, init.options as SqliteOptions);
} catch (err) {
  // Closing the port lets the thread end once the message is out.
  port.postMessage({ ready: false, error: failure(err) } satisfies WorkerReady);
  port.close();
}
if (store !== null) {
  const s = store;
  port.postMessage({ ready: true } satisfies WorkerReady);
  port.on('message', (calls: Call[]) => {
    void Promise.all(calls.map((c) => invoke(s, c))).then((results) => {
      const reply: Reply = { results, commits: { ...s.commits } };
      port.postMessage(reply);
      if (calls.some((c) => c.method === 'close')) port.close();
    });
  });
}
