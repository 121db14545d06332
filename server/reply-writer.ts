// The server's reply bytes: RFC 2131 §2 (message layout), RFC 2132 §2-3 (options, END, padding to
// BOOTP's 300 bytes) and RFC 3396 (an option longer than 255 bytes as several instances). The
// protocol codec (protocol/dhcp-message.ts encodeDhcpMessage) validates a record field by field and
// measures the options twice; the engine's replies are built from values it decoded or configured,
// so on the per-packet path this writer measures once and writes once. It handles the common case —
// every option fits the options field — and returns null otherwise, and the engine then calls the
// codec, which overloads file/sname or refuses (test/server-engine.test.ts checks both agree).
import {
  BOOTP_MIN_LENGTH, FILE_LENGTH, SNAME_LENGTH, MAGIC_COOKIE, OPTIONS_OFFSET, OptionCode, optionWireLength, payloadLimit, type DhcpMessage,
} from '../protocol/index.js';

/** Zero sname and file for replies without boot fields: shared by every such reply, never written. */
export const ZERO_SNAME = Buffer.alloc(SNAME_LENGTH);
export const ZERO_FILE = Buffer.alloc(FILE_LENGTH);

/** The engine's replies without boot fields share one zero sname and file (engine.ts): test by identity first. */
function isZeroField(b: Buffer): boolean {
  if (b === ZERO_SNAME || b === ZERO_FILE) return true;
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Buffer.copy's argument checks cost more than a byte loop for a few bytes. */
function copySmall(src: Buffer, dst: Buffer, at: number, n: number): void {
  for (let i = 0; i < n; i++) dst[at + i] = src[i]!;
}

/**
 * The encoded reply, or null when its options do not fit the options field of a message the client
 * accepts (`maxMessageSize`: option 57 semantics) — the codec's overload path then decides.
 */
export function writeReply(r: DhcpMessage, maxMessageSize: number): Buffer | null {
  const opts = r.options;
  let total = 1;
  for (let k = 0; k < opts.length; k++) total += optionWireLength(opts[k]!.data.length);
  if (total > payloadLimit(maxMessageSize) - OPTIONS_OFFSET) return null;
  const length = Math.max(BOOTP_MIN_LENGTH, OPTIONS_OFFSET + total);
  // Every byte below is written, so the pooled, unzeroed allocation is safe.
  const out = Buffer.allocUnsafe(length);
  out[0] = r.op;
  out[1] = r.htype;
  out[2] = r.hlen;
  out[3] = r.hops;
  out.writeUInt32BE(r.xid >>> 0, 4);
  out.writeUInt16BE(r.secs, 8);
  out.writeUInt16BE(r.flags, 10);
  out.writeUInt32BE(r.ciaddr >>> 0, 12);
  out.writeUInt32BE(r.yiaddr >>> 0, 16);
  out.writeUInt32BE(r.siaddr >>> 0, 20);
  out.writeUInt32BE(r.giaddr >>> 0, 24);
  copySmall(r.chaddr, out, 28, 16);
  if (isZeroField(r.sname)) out.fill(0, 44, 108); else r.sname.copy(out, 44, 0, 64);
  if (isZeroField(r.file)) out.fill(0, 108, 236); else r.file.copy(out, 108, 0, 128);
  out.writeUInt32BE(MAGIC_COOKIE, 236);
  let p = OPTIONS_OFFSET;
  for (let k = 0; k < opts.length; k++) {
    const { code, data } = opts[k]!;
    const len = data.length;
    if (len <= 16) { out[p] = code; out[p + 1] = len; copySmall(data, out, p + 2, len); p += 2 + len; continue; }
    for (let from = 0; from < len;) {
      const n = Math.min(255, len - from);
      out[p] = code; out[p + 1] = n;
      data.copy(out, p + 2, from, from + n);
      p += 2 + n; from += n;
    }
  }
  out[p++] = OptionCode.END;
  out.fill(0, p, length);
  return out;
}
