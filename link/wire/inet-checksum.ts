// The Internet checksum: 16-bit one's complement of the one's complement sum (RFC 1071 §1, §4.1),
// used by the IPv4 header (RFC 791), UDP with its pseudo-header (RFC 768) and ICMP (RFC 792).
// Every IPoIB datagram crosses it at least twice, so it reads bytes straight from the Buffer and
// allocates nothing.

/**
 * Adds the big-endian 16-bit words of buf[offset, offset+length) to sum and returns the
 * unfolded total. An odd final byte counts as its word's high byte (zero-padded, RFC 1071 §4.1).
 * Chain calls to cover several ranges; only the last range may have an odd length.
 */
export function onesSum(buf: Uint8Array, offset: number, length: number, sum = 0): number {
  const end = offset + length;
  const even = offset + (length & ~1);
  let i = offset;
  // Two words per pass; the running total stays far below 2^53 for any 64 KiB datagram.
  const end4 = offset + (length & ~3);
  for (; i < end4; i += 4) {
    sum += ((buf[i]! << 8) | buf[i + 1]!) + ((buf[i + 2]! << 8) | buf[i + 3]!);
  }
  for (; i < even; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

/** Folds the carries back into 16 bits and complements: the value written into the header. */
export function foldChecksum(sum: number): number {
  // Division rather than `>>> 16`, because a chained sum may exceed 32 bits.
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** Checksum of one byte range. Over a range that includes its own correct checksum, this is 0. */
export function inetChecksum(buf: Uint8Array, offset = 0, length = buf.length - offset): number {
  return foldChecksum(onesSum(buf, offset, length));
}

/** Sum of the IPv4 pseudo-header used by UDP and TCP (RFC 768): src, dst, zero, protocol, length. */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}
