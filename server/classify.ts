// Client classification: the subset of Kea's expression language (Kea ARM "Client Classification",
// "Using Expressions in Classification") that ipoib-dhcpd evaluates. Supported:
//
//   literals        'text'   0x0a0b (hex)   32 (decimal integer)
//   packet fields   pkt4.htype  pkt4.hlen  pkt4.mac (chaddr[0..hlen])  pkt4.msgtype  pkt4.transid
//                   pkt4.ciaddr  pkt4.giaddr  pkt4.yiaddr  pkt4.siaddr
//   options         option[CODE or name].hex   .text   .exists
//   relay options   relay4[SUBCODE].hex   .text   .exists   (option 82 sub-options)
//   functions       substring(EXPR, START, LENGTH | 'all')   member('CLASS')
//   operators       ==   not   and   or   ( ... )
//
// Anything else (ifelse, concat, split, vendor[], pkt.*, arithmetic) is a configuration error naming
// the token, never a class that silently fails to match. Comparison is byte-wise, as in Kea; a
// number compared with bytes compares with their big-endian value.

import { findOption, optionDef, getMessageType, OptionCode, type DhcpMessage } from '../protocol/index.js';

export type ClassValue = Buffer | number | boolean;

type Node =
  | { k: 'lit'; v: ClassValue }
  | { k: 'field'; name: string }
  | { k: 'option'; code: number; relay: boolean; form: 'hex' | 'text' | 'exists' }
  | { k: 'substring'; of: Node; start: number; length: number | null }
  | { k: 'member'; name: string }
  | { k: 'eq'; a: Node; b: Node }
  | { k: 'not'; a: Node }
  | { k: 'and' | 'or'; a: Node; b: Node };

export class ClassExpressionError extends Error {
  override readonly name = 'ClassExpressionError';
  constructor(readonly at: number, detail: string) { super(detail); }
}

const FIELDS = new Set(['htype', 'hlen', 'mac', 'msgtype', 'transid', 'ciaddr', 'giaddr', 'yiaddr', 'siaddr']);
const TOKEN = /\s*(0x[0-9a-fA-F]*|\d+|'(?:[^'\\]|\\.)*'|==|\(|\)|\[|\]|,|\.|[A-Za-z_][A-Za-z0-9_-]*\d*)/y;

function tokenize(text: string): { t: string; at: number }[] {
  const out: { t: string; at: number }[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(text);
    if (m === null) throw new ClassExpressionError(pos, `unexpected character ${JSON.stringify(text.slice(pos).trim()[0])}`);
    out.push({ t: m[1]!, at: pos + m[0].length - m[1]!.length });
    pos = TOKEN.lastIndex;
  }
  return out;
}

/** A parsed class test; evaluate() runs it against a message and the classes matched so far. */
export interface ClassTest {
  readonly source: string;
  /** Classes named by member('...'), so the config can check they are defined earlier. */
  readonly members: readonly string[];
  evaluate(m: DhcpMessage, memberOf: ReadonlySet<string>): boolean;
}

export function parseClassTest(source: string): ClassTest {
  const toks = tokenize(source);
  let i = 0;
  const members: string[] = [];
  const peek = (): string | undefined => toks[i]?.t;
  const fail = (why: string): never => {
    throw new ClassExpressionError(toks[i]?.at ?? source.length, why);
  };
  const expect = (t: string): void => {
    if (peek() !== t) fail(`expected '${t}' but found ${peek() === undefined ? 'the end' : `'${peek()!}'`}`);
    i++;
  };
  const int = (): number => {
    const t = peek();
    if (t === undefined || !/^\d+$/.test(t)) fail(`expected a number, found ${t === undefined ? 'the end' : `'${t}'`}`);
    i++;
    return Number(t);
  };
  const optionRef = (relay: boolean): Node => {
    expect('[');
    const t = peek();
    if (t === undefined) return fail('expected an option code or name');
    i++;
    let code: number;
    if (/^\d+$/.test(t)) code = Number(t);
    else if (relay) return fail(`relay4[] takes a sub-option code, not '${t}'`);
    else {
      try { code = optionDef(t).code; } catch { return fail(`unknown option name '${t}'`); }
    }
    if (code < 1 || code > 254) fail(`option code ${code} is not 1..254`);
    expect(']');
    expect('.');
    const form = peek();
    if (form !== 'hex' && form !== 'text' && form !== 'exists') return fail(`option[...].${form ?? ''} is not supported (hex, text, exists)`);
    i++;
    return { k: 'option', code, relay, form };
  };
  const value = (): Node => {
    const t = peek();
    if (t === undefined) return fail('expression ends too early');
    if (t.startsWith("'")) { i++; return { k: 'lit', v: Buffer.from(t.slice(1, -1).replace(/\\(.)/g, '$1'), 'latin1') }; }
    if (t.startsWith('0x')) {
      i++;
      const hex = t.slice(2);
      return { k: 'lit', v: Buffer.from(hex.length % 2 === 1 ? '0' + hex : hex, 'hex') };
    }
    if (/^\d+$/.test(t)) { i++; return { k: 'lit', v: Number(t) }; }
    if (t === 'pkt4') {
      i++; expect('.');
      const f = peek();
      if (f === undefined || !FIELDS.has(f)) return fail(`pkt4.${f ?? ''} is not supported (${[...FIELDS].join(', ')})`);
      i++;
      return { k: 'field', name: f };
    }
    if (t === 'option') { i++; return optionRef(false); }
    if (t === 'relay4') { i++; return optionRef(true); }
    if (t === 'substring') {
      i++; expect('(');
      const of = value(); expect(',');
      const start = int(); expect(',');
      let length: number | null;
      if (peek() === "'all'") { i++; length = null; } else length = int();
      expect(')');
      return { k: 'substring', of, start, length };
    }
    if (t === 'member') {
      i++; expect('(');
      const n = peek();
      if (n === undefined || !n.startsWith("'")) return fail("member() takes a quoted class name");
      i++; expect(')');
      members.push(n.slice(1, -1));
      return { k: 'member', name: n.slice(1, -1) };
    }
    return fail(`'${t}' is not supported in ipoib-dhcpd's class tests`);
  };
  const primary = (): Node => {
    if (peek() === '(') { i++; const e = or(); expect(')'); return e; }
    if (peek() === 'not') { i++; return { k: 'not', a: primary() }; }
    const a = value();
    if (peek() === '==') { i++; return { k: 'eq', a, b: value() }; }
    return a;
  };
  const and = (): Node => {
    let a = primary();
    while (peek() === 'and') { i++; a = { k: 'and', a, b: primary() }; }
    return a;
  };
  const or = (): Node => {
    let a = and();
    while (peek() === 'or') { i++; a = { k: 'or', a, b: and() }; }
    return a;
  };
  const root = or();
  if (i < toks.length) fail(`unexpected '${peek()!}'`);
  return {
    source, members,
    evaluate: (m, memberOf) => truthy(evaluate(root, m, memberOf)),
  };
}

function field(m: DhcpMessage, name: string): ClassValue {
  switch (name) {
    case 'htype': return m.htype;
    case 'hlen': return m.hlen;
    case 'mac': return m.chaddr.subarray(0, Math.min(m.hlen, 16));
    case 'msgtype': return getMessageType(m) ?? 0;
    case 'transid': return m.xid;
    case 'ciaddr': return m.ciaddr;
    case 'giaddr': return m.giaddr;
    case 'yiaddr': return m.yiaddr;
    default: return m.siaddr;
  }
}

function relaySub(m: DhcpMessage, code: number): Buffer | undefined {
  const o82 = findOption(m.options, OptionCode.AGENT_OPTIONS);
  if (o82 === undefined) return undefined;
  for (let p = 0; p + 2 <= o82.length;) {
    const c = o82[p]!, len = o82[p + 1]!;
    if (p + 2 + len > o82.length) return undefined;
    if (c === code) return o82.subarray(p + 2, p + 2 + len);
    p += 2 + len;
  }
  return undefined;
}

function asBytes(v: ClassValue): Buffer {
  if (typeof v === 'boolean') return Buffer.from(v ? 'true' : 'false');
  if (typeof v === 'number') { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; }
  return v;
}

function asNumber(b: Buffer): number {
  let n = 0;
  for (const x of b) n = n * 256 + x;
  return n;
}

function truthy(v: ClassValue): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  return v.length > 0 && !(v.length === 5 && v.toString() === 'false');
}

function evaluate(n: Node, m: DhcpMessage, memberOf: ReadonlySet<string>): ClassValue {
  switch (n.k) {
    case 'lit': return n.v;
    case 'field': return field(m, n.name);
    case 'option': {
      const d = n.relay ? relaySub(m, n.code) : findOption(m.options, n.code);
      if (n.form === 'exists') return d !== undefined;
      return d ?? Buffer.alloc(0);
    }
    case 'substring': {
      const b = asBytes(evaluate(n.of, m, memberOf));
      return b.subarray(n.start, n.length === null ? b.length : n.start + n.length);
    }
    case 'member': return memberOf.has(n.name);
    case 'not': return !truthy(evaluate(n.a, m, memberOf));
    case 'and': return truthy(evaluate(n.a, m, memberOf)) && truthy(evaluate(n.b, m, memberOf));
    case 'or': return truthy(evaluate(n.a, m, memberOf)) || truthy(evaluate(n.b, m, memberOf));
    case 'eq': {
      const a = evaluate(n.a, m, memberOf), b = evaluate(n.b, m, memberOf);
      if (typeof a === 'number' || typeof b === 'number') {
        const x = typeof a === 'number' ? a : typeof a === 'boolean' ? Number(a) : asNumber(a);
        const y = typeof b === 'number' ? b : typeof b === 'boolean' ? Number(b) : asNumber(b);
        return x === y;
      }
      return asBytes(a).equals(asBytes(b));
    }
  }
}
