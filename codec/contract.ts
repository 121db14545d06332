// The codec contract shared by every wire format of the project (link/wire/, protocol/).
// Modelled on smoltcp's src/wire/mod.rs and dns-packet's encode/decode/encodingLength.
//
//  1. decode(untrusted bytes, offset?) returns a record or throws a WireError — never a
//     RangeError from a Buffer read, never loops (every loop is bounded by the input length
//     or by a named limit).
//  2. encode(record, buf?, offset?) into a buffer of at least encodedLength(record) bytes from
//     offset never fails for a record that decode could have produced; it writes exactly
//     encodedLength(record) bytes and nothing outside them. Without buf it allocates one.
//  3. Unknown code points (opcodes, option codes, attribute ids, ...) survive as numbers or raw
//     bytes, so decode(encode(x)) deep-equals x for every valid x, known or not.
//  4. Checksums and lengths that the wire derives from the rest are computed on encode and
//     verified on decode (a mismatch is a WireError with code BAD_CHECKSUM / BAD_LENGTH),
//     unless a codec documents that it keeps them as data.
//  5. Codecs do no I/O and keep no module-level state.

import { WireError } from './wire-error.js';

export interface Codec<T> {
  /** Protocol name used in WireError messages, e.g. "BTH". */
  readonly name: string;
  encodedLength(value: T): number;
  /** Writes value at offset of buf (allocating when buf is absent) and returns the buffer. */
  encode(value: T, buf?: Buffer, offset?: number): Buffer;
  decode(buf: Buffer, offset?: number): T;
}

/** Allocates when the caller gave no buffer and checks room when it did (contract point 2). */
export function targetBuffer(codec: string, length: number, buf: Buffer | undefined, offset: number): Buffer {
  if (buf === undefined) return zeroed(offset + length);
  if (!Number.isInteger(offset) || offset < 0 || offset + length > buf.length) {
    throw new WireError('BUFFER_TOO_SMALL', codec, 'buffer', offset,
      `needs ${length} bytes at offset ${offset}, buffer has ${buf.length}`);
  }
  return buf;
}

/**
 * Buffer.alloc(n) without a fresh ArrayBuffer per call: below 4 KiB it is a zero-filled slice of
 * Node's shared 8 KiB pool (Buffer.allocUnsafe), where Buffer.alloc allocates a backing store each
 * time. Codecs and the IPoIB stack allocate a few small buffers per packet; at a 10,000-host boot
 * those backing stores were a tenth of the ping phase. Not for a buffer whose .buffer is handed on
 * whole (a transfer to a worker): it shares that ArrayBuffer with others.
 */
export function zeroed(n: number): Buffer {
  return Buffer.allocUnsafe(n).fill(0);
}

