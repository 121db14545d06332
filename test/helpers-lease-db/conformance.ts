// The one conformance suite every LeaseStore backend runs in full (after Kea's
// generic_lease_mgr_unittest: the same expectations, parameterised by how to open a store).
import type { Test } from 'tap';
import { parseIPv4 } from '../../lease-db/address.js';
import type { Lease, LeaseStore, NewLease, Pool } from '../../lease-db/lease.js';

export interface Backend {
  name: string;
  /** A new, empty store (its own file or schema). */
  open(): Promise<LeaseStore>;
  /** The same database as `store`, opened again after it was closed. */
  reopen(store: LeaseStore): Promise<LeaseStore>;
}

export const NOW = 1_800_000_000;
export const ip = (s: string): number => parseIPv4(s)!;
export const POOLS: Pool[] = [
  { id: 1, subnetId: 1, first: ip('10.1.0.10'), last: ip('10.1.0.19') },
  { id: 2, subnetId: 2, first: ip('10.2.0.0'), last: ip('10.2.0.255') },
  { id: 3, subnetId: 2, first: ip('10.2.1.0'), last: ip('10.2.1.3') },
];

export function cid(n: number): Buffer {
  // An RFC 4390 client identifier shape: type 0xff, IAID, DUID-type 2 ... made unique by n.
  const b = Buffer.alloc(20);
  b[0] = 0xff;
  b.writeUInt32BE(n, 1);
  b.writeUInt16BE(2, 5);
  b.writeUInt32BE(0x0002c903, 7);
  b.writeUInt32BE(n * 7919, 16);
  return b;
}

export function hw(n: number): Buffer {
  // 20-byte IPoIB hardware address (RFC 4391 §9.1.1): flags+QPN, then the port GID.
  const b = Buffer.alloc(20);
  b.writeUInt32BE(0x00000048 + n, 0);
  b.writeUInt32BE(0xfe800000, 4);
  b.writeBigUInt64BE(0x0002c90300000000n + BigInt(n), 12);
  return b;
}

export function lease(address: string, over: Partial<NewLease> = {}): NewLease {
  const n = ip(address) & 0xffff;
  return {
    address: ip(address), subnetId: ip(address) >>> 16 === 0x0a01 ? 1 : 2, clientId: cid(n), portGuid: 0x0002c90300000000n + BigInt(n),
    hwaddr: hw(n), hostname: `node${n}`, state: 'bound', start: NOW, expiry: NOW + 3600, server: 'srv-a', ...over,
  };
}

const strip = (l: Lease): NewLease => {
  const { version: _v, ...rest } = l;
  return rest;
};

export function conformance(t: Test, b: Backend): void {
  const cleanups: LeaseStore[] = [];
  const open = async (): Promise<LeaseStore> => {
    const s = await b.open();
    cleanups.push(s);
    await s.configurePools(POOLS);
    return s;
  };
  t.teardown(async () => { for (const s of cleanups) await s.close(); });

  t.test(`${b.name}: add, get round-trips every field; the version starts at 1`, async (t) => {
    const s = await open();
    const l = lease('10.1.0.50', { portGuid: 0xfedcba9876543210n, hostname: 'nœud-1', clientId: Buffer.from([0xff, 0, 0x22, 0x5c, 0x80]) });
    const added = await s.add(l);
    t.same(strip(added), l);
    t.equal(added.version, 1);
    const got = await s.get(l.address);
    t.same(got, added, 'get returns what add returned');
    t.equal(got?.portGuid, 0xfedcba9876543210n, 'a GUID above 2^63 survives the signed column');
    t.ok(Buffer.isBuffer(got?.hwaddr) && got!.hwaddr.length === 20);
    t.equal(await s.get(ip('10.1.0.51')), null, 'an address without a lease: null');
    await t.rejects(s.add(l), { code: 'CONFLICT' }, 'a second lease on one address is refused');
    const minimal = lease('10.1.0.52', { clientId: null, portGuid: null, hwaddr: null, hostname: null });
    t.same(strip(await s.add(minimal)), minimal, 'nullable fields stay null');
  });

  t.test(`${b.name}: bad leases are refused with BAD_INPUT before they reach the database`, async (t) => {
    const s = await open();
    await t.rejects(s.add(lease('10.1.0.60', { hwaddr: Buffer.alloc(6) })), { code: 'BAD_INPUT' }, '6-byte hwaddr');
    await t.rejects(s.add({ ...lease('10.1.0.60'), address: 2 ** 32 }), { code: 'BAD_INPUT' }, 'address beyond 32 bits');
    await t.rejects(s.add(lease('10.1.0.60', { state: 'bogus' as 'bound' })), { code: 'BAD_INPUT' }, 'unknown state');
    await t.rejects(s.add(lease('10.1.0.60', { clientId: Buffer.alloc(0) })), { code: 'BAD_INPUT' }, 'empty client id');
    t.equal(await s.get(ip('10.1.0.60')), null, 'nothing was written');
  });

  t.test(`${b.name}: update is optimistic: right version bumps it, a stale one is a CONFLICT`, async (t) => {
    const s = await open();
    const a = await s.add(lease('10.1.0.70'));
    const u = await s.update({ ...a, hostname: 'renamed', expiry: NOW + 7200 });
    t.equal(u.version, 2);
    t.equal(u.hostname, 'renamed');
    t.equal((await s.get(a.address))?.expiry, NOW + 7200);
    await t.rejects(s.update({ ...a, hostname: 'lost update' }), { code: 'CONFLICT' }, 'version 1 is stale now');
    t.equal((await s.get(a.address))?.hostname, 'renamed', 'the stale write changed nothing');
    await t.rejects(s.update({ ...a, address: ip('10.1.0.71') }), { code: 'NOT_FOUND' });
    t.equal(await s.delete(a.address), true);
    t.equal(await s.delete(a.address), false);
    t.equal(await s.get(a.address), null);
  });

  t.test(`${b.name}: lookups by client id (per subnet), port GUID and hardware address`, async (t) => {
    const s = await open();
    const one = await s.add(lease('10.1.0.80', { clientId: cid(9), portGuid: 77n, hwaddr: hw(9) }));
    const two = await s.add(lease('10.2.0.80', { subnetId: 2, clientId: cid(9), portGuid: 77n, hwaddr: hw(9) }));
    await s.add(lease('10.1.0.81'));
    t.same(await s.getByClientId(1, cid(9)), one, 'subnet 1');
    t.same(await s.getByClientId(2, cid(9)), two, 'subnet 2: same client, its other lease');
    t.equal(await s.getByClientId(3, cid(9)), null, 'no lease in subnet 3');
    t.equal(await s.getByClientId(1, cid(10)), null, 'unknown client');
    t.same((await s.getByPortGuid(77n)).map((l) => l.address), [one.address, two.address]);
    t.same((await s.getByHwaddr(hw(9))).map((l) => l.address), [one.address, two.address]);
    t.same(await s.getByPortGuid(78n), []);
  });

  t.test(`${b.name}: list filters by subnet and state and pages by address`, async (t) => {
    const s = await open();
    const addrs: number[] = [];
    for (let i = 0; i < 11; i++) {
      const a = `10.2.0.${100 + i}`;
      addrs.push(ip(a));
      await s.add(lease(a, { subnetId: 2, state: i % 3 === 0 ? 'offered' : 'bound' }));
    }
    await s.add(lease('10.1.0.90'));
    const seen: number[] = [];
    let after: number | undefined;
    for (let page = 0; page < 10; page++) {
      const p = await s.list(after === undefined ? { subnetId: 2, limit: 4 } : { subnetId: 2, after, limit: 4 });
      seen.push(...p.map((l) => l.address));
      if (p.length < 4) break;
      after = p[p.length - 1]!.address;
    }
    t.same(seen, addrs, 'pages of 4 give every subnet-2 lease once, in address order');
    t.same((await s.list({ state: 'offered' })).map((l) => l.address), addrs.filter((_, i) => i % 3 === 0));
    t.equal((await s.list()).length, 12);
  });

  t.test(`${b.name}: allocate takes the lowest free address, skips held ones, and reports exhaustion`, async (t) => {
    const s = await open();
    await s.add(lease('10.1.0.11'));
    const req = (n: number) => ({ poolId: 1, clientId: cid(n), state: 'offered' as const, lifetime: 60, now: NOW, server: 'srv-a' });
    const a = await s.allocate(req(1));
    t.equal(a.address, ip('10.1.0.10'));
    t.equal(a.state, 'offered');
    t.equal(a.expiry, NOW + 60);
    t.equal(a.subnetId, 1, 'the pool gives the subnet');
    t.equal((await s.allocate(req(2))).address, ip('10.1.0.12'), '.11 has a lease: skipped');
    const rest = await Promise.all([3, 4, 5, 6, 7, 8, 9].map((n) => s.allocate(req(n))));
    t.equal(new Set(rest.map((l) => l.address)).size, 7, 'concurrent allocations get distinct addresses');
    t.ok(rest.every((l) => l.address >= POOLS[0]!.first && l.address <= POOLS[0]!.last));
    await t.rejects(s.allocate(req(10)), { code: 'POOL_EXHAUSTED' }, 'ten addresses, ten leases');
    await t.rejects(s.allocate({ ...req(10), poolId: 99 }), { code: 'NO_POOL' });
    const all = await s.list({ subnetId: 1 });
    t.equal(all.length, 10);
    t.equal(new Set(all.map((l) => l.clientId!.toString('hex'))).size, 10, 'one address per client');
  });

  t.test(`${b.name}: allocate reuses released, expired and run-out leases, never a held one`, async (t) => {
    const s = await open();
    const req = (n: number, now = NOW) => ({ poolId: 3, clientId: cid(n), state: 'bound' as const, lifetime: 100, now, server: 'srv-b' });
    const got = await Promise.all([1, 2, 3, 4].map((n) => s.allocate(req(n))));
    await t.rejects(s.allocate(req(5)), { code: 'POOL_EXHAUSTED' });
    t.equal(await s.release(got[0]!.address, cid(99), NOW, 'srv-b'), null, 'another client cannot release it');
    const rel = await s.release(got[0]!.address, cid(1), NOW + 1, 'srv-b');
    t.equal(rel?.state, 'released');
    t.equal(rel?.version, 2);
    const again = await s.allocate(req(5, NOW + 2));
    t.equal(again.address, got[0]!.address, 'the released address goes to the next client');
    t.same(again.clientId, cid(5));
    t.equal(again.version, 3, 'taking over a row bumps its version');
    await t.rejects(s.allocate(req(6, NOW + 50)), { code: 'POOL_EXHAUSTED' }, 'all four still held at NOW+50');
    const late = await s.allocate(req(6, NOW + 100));
    t.ok(got.slice(1).some((l) => l.address === late.address), 'at NOW+100 a lease past its expiry is taken over without a sweep');
    t.same((await s.get(late.address))?.clientId, cid(6));
  });

  t.test(`${b.name}: decline holds the address for the hold-off and forgets the client`, async (t) => {
    const s = await open();
    const [a] = await Promise.all([1, 2, 3, 4].map((n) =>
      s.allocate({ poolId: 3, clientId: cid(n), state: 'bound', lifetime: 10, now: NOW, server: 'x' })));
    const d = await s.decline(a!.address, 600, NOW + 5, 'srv-a');
    t.equal(d.state, 'declined');
    t.equal(d.expiry, NOW + 605);
    t.same([d.clientId, d.hwaddr, d.portGuid, d.hostname], [null, null, null, null], 'identifiers cleared (as Kea does)');
    t.equal(await s.release(a!.address, null, NOW + 6, 'srv-a'), null, 'a declined address cannot be released');
    const swept = await s.expire(NOW + 20);
    t.same(swept.map((l) => l.state), ['expired', 'expired', 'expired'], 'the three bound leases expire, not the declined one');
    const next = await s.allocate({ poolId: 3, clientId: cid(7), state: 'offered', lifetime: 10, now: NOW + 20, server: 'x' });
    t.not(next.address, a!.address, 'the declined address is skipped during its hold-off');
    const fresh = await s.decline(ip('10.2.0.200'), 60, NOW + 20, 'srv-a');
    t.same([fresh.state, fresh.subnetId, fresh.version], ['declined', 2, 1], 'declining a pool address with no lease records it');
    await t.rejects(s.decline(ip('192.0.2.1'), 60, NOW, 'srv-a'), { code: 'NOT_FOUND' }, 'outside every pool, no lease');
    const after = await s.expire(NOW + 700);
    t.ok(after.some((l) => l.address === a!.address), 'after the hold-off the sweep frees it');
  });

  t.test(`${b.name}: expire sweeps only what ran out, oldest first, up to the limit`, async (t) => {
    const s = await open();
    await s.add(lease('10.2.0.1', { expiry: NOW + 30 }));
    await s.add(lease('10.2.0.2', { expiry: NOW + 10, state: 'offered' }));
    await s.add(lease('10.2.0.3', { expiry: NOW + 20 }));
    await s.add(lease('10.2.0.4', { expiry: NOW + 5000 }));
    await s.add(lease('10.2.0.5', { expiry: NOW, state: 'released' }));
    const first = await s.expire(NOW + 40, 2);
    t.same(first.map((l) => l.address), [ip('10.2.0.2'), ip('10.2.0.3')], 'limit 2, earliest expiry first');
    t.ok(first.every((l) => l.state === 'expired' && l.version === 2));
    const second = await s.expire(NOW + 40);
    t.same(second.map((l) => l.address), [ip('10.2.0.1')]);
    t.same(await s.expire(NOW + 40), [], 'nothing left to sweep');
    t.equal((await s.get(ip('10.2.0.4')))?.state, 'bound');
    t.equal((await s.get(ip('10.2.0.5')))?.state, 'released', 'released leases are not re-expired');
  });

  t.test(`${b.name}: statistics per pool and per subnet`, async (t) => {
    const s = await open();
    await s.add(lease('10.2.0.1'));
    await s.add(lease('10.2.0.2', { state: 'offered' }));
    await s.add(lease('10.2.0.3', { state: 'declined' }));
    await s.add(lease('10.2.0.4', { state: 'released' }));
    await s.add(lease('10.2.0.5', { expiry: NOW - 1 }));
    await s.add(lease('10.2.1.0'));
    await s.add(lease('10.1.0.10'));
    const st = await s.stats(NOW);
    t.same(st, [
      { subnetId: 1, poolId: 1, total: 10, assigned: 1, declined: 0, free: 9 },
      { subnetId: 2, poolId: 2, total: 256, assigned: 2, declined: 1, free: 253 },
      { subnetId: 2, poolId: 3, total: 4, assigned: 1, declined: 0, free: 3 },
      { subnetId: 1, total: 10, assigned: 1, declined: 0, free: 9 },
      { subnetId: 2, total: 260, assigned: 3, declined: 1, free: 256 },
    ], 'a lease past its expiry counts as free');
  });

  t.test(`${b.name}: leases survive close and reopen; the index is rebuilt from the database`, async (t) => {
    const s = await open();
    const got = await Promise.all([1, 2, 3].map((n) =>
      s.allocate({ poolId: 1, clientId: cid(n), state: 'bound', lifetime: 3600, now: NOW, server: 'x' })));
    await s.close();
    await t.rejects(s.get(got[0]!.address), { code: 'CLOSED' });
    await t.rejects(s.add(lease('10.1.0.99')), { code: 'CLOSED' });
    const r = await b.reopen(s);
    cleanups.push(r);
    await r.configurePools(POOLS);
    for (const l of got) t.same(await r.get(l.address), l, `${l.address} is still there`);
    const next = await r.allocate({ poolId: 1, clientId: cid(4), state: 'bound', lifetime: 3600, now: NOW, server: 'x' });
    t.notOk(got.some((l) => l.address === next.address), 'allocation after reopening does not hand out a held address');
  });
}
