// One round-trip and one fuzz helper applied to every codec (STYLE.md: dns-packet's testEncoder).
import fc from 'fast-check';
import type { Codec } from '../../codec/contract.js';
import { WireError } from '../../codec/wire-error.js';

/** The part of tap's Test these helpers use (message required, so tap's own Test type fits). */
export interface Tap {
  same(found: unknown, wanted: unknown, msg: string): unknown;
  equal(found: unknown, wanted: unknown, msg: string): unknown;
  ok(v: unknown, msg: string): unknown;
}

const SENTINEL = 0xa5;

/**
 * Encodes value alone and at an odd offset inside a larger buffer filled with a sentinel, checks
 * that exactly encodedLength bytes were written and nothing around them, and that both decode
 * back to value. Returns the encoded bytes for further checks.
 */
export function roundTrip<T>(t: Tap, codec: Codec<T>, value: T, label = codec.name): Buffer {
  const len = codec.encodedLength(value);
  const alone = codec.encode(value);
  t.equal(alone.length, len, `${label}: encode() allocates encodedLength bytes`);
  t.same(codec.decode(alone), value, `${label}: decode(encode(x)) == x`);
  const pad = 7;
  const big = Buffer.alloc(len + pad * 2, SENTINEL);
  const out = codec.encode(value, big, pad);
  t.ok(out === big, `${label}: encode(x, buf, off) writes into the caller's buffer`);
  t.ok(big.subarray(0, pad).every((b) => b === SENTINEL) && big.subarray(pad + len).every((b) => b === SENTINEL),
    `${label}: encode at offset writes nothing outside its ${len} bytes`);
  t.same(big.subarray(pad, pad + len), alone, `${label}: same bytes at an offset`);
  t.same(codec.decode(big, pad), value, `${label}: decode at offset`);
  return alone;
}

/** Property: only WireError escapes decode on arbitrary bytes, and the decoder still works afterwards. */
export function fuzzDecode<T>(t: Tap, codec: Codec<T>, good: Buffer, opts: { runs?: number; maxLength?: number } = {}): void {
  const runs = opts.runs ?? 2000;
  const maxLength = opts.maxLength ?? Math.max(64, good.length * 2);
  const onlyWireError = (bytes: Uint8Array): boolean => {
    try {
      codec.decode(Buffer.from(bytes));
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
    }
    return true;
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength }), onlyWireError), { numRuns: runs });
  // Mutations of a valid packet reach deeper than random bytes.
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    fc.nat(good.length),
    (edits, cut) => {
      const b = Buffer.from(good);
      for (const [i, v] of edits) b[i] = v;
      return onlyWireError(b.subarray(0, cut === good.length ? good.length : cut));
    }), { numRuns: runs });
  t.ok(codec.decode(good) !== undefined, `${codec.name}: decoder still works after ${runs * 2} hostile inputs`);
}

/** Asserts that fn throws a WireError with the given code (and field, when given). */
export function throwsWire(t: Tap, fn: () => unknown, code: string, field?: string, msg?: string): void {
  try {
    fn();
    t.ok(false, msg ?? `expected WireError ${code}`);
  } catch (err) {
    t.ok(err instanceof WireError, `${msg ?? code}: is a WireError (${String(err)})`);
    if (err instanceof WireError) {
      t.equal(err.code, code, `${msg ?? code}: code`);
      if (field !== undefined) t.equal(err.field, field, `${msg ?? code}: field`);
    }
  }
}

/** Hex string (spaces, colons and newlines allowed) to bytes: test vectors stay readable. */
export function hex(s: string): Buffer {
  const clean = s.replace(/#.*$/gm, '').replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new Error(`bad hex vector: ${s.slice(0, 40)}`);
  return Buffer.from(clean, 'hex');
}
