// What the kernel says about a network interface, read from /sys/class/net/IFACE (Linux
// Documentation/ABI/testing/sysfs-class-net; IPOIB-FACTS §3.1, §3.10): its ARPHRD type (32 for
// InfiniBand), its hardware address (20 bytes on IPoIB: flags+QPN, then the 16-byte GID whose last
// 8 bytes are the port GUID), MTU, IPoIB mode (datagram/connected) and carrier.
// Inside `ip netns exec` /sys is remounted for the namespace, so this sees the namespace's links.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** ARPHRD_INFINIBAND (include/uapi/linux/if_arp.h). */
export const ARPHRD_INFINIBAND = 32;
/** INFINIBAND_ALEN. */
export const IPOIB_HW_ADDRESS_LENGTH = 20;

export interface KernelInterfaceInfo {
  name: string;
  /** ARPHRD_* from /sys/class/net/IFACE/type. */
  type: number;
  hwAddress: Buffer;
  mtu: number;
  /** /sys/class/net/IFACE/mode, present on IPoIB interfaces only. */
  mode: 'datagram' | 'connected' | null;
  /** true/false from /sys/class/net/IFACE/carrier; null when the interface is down (the file cannot be read). */
  carrier: boolean | null;
}

export class KernelInterfaceError extends Error {
  override readonly name = 'KernelInterfaceError';
  constructor(readonly code: 'NO_SUCH_INTERFACE' | 'NOT_INFINIBAND', message: string) {
    super(message);
  }
}

function read(dir: string, file: string): string | null {
  try {
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch {
    return null;
  }
}

/** Reads the interface's sysfs attributes; `root` is /sys/class/net unless a test points elsewhere. */
export function readKernelInterface(name: string, root = '/sys/class/net'): KernelInterfaceInfo {
  if (name.includes('/') || name === '.' || name === '..') throw new KernelInterfaceError('NO_SUCH_INTERFACE', `${name}: not an interface name`);
  const dir = join(root, name);
  const type = read(dir, 'type');
  if (type === null) throw new KernelInterfaceError('NO_SUCH_INTERFACE', `${name}: no such interface (${dir} not found)`);
  const address = read(dir, 'address') ?? '';
  const hwAddress = address === '' ? Buffer.alloc(0) : Buffer.from(address.split(':').map((h) => parseInt(h, 16)));
  const mode = read(dir, 'mode');
  const carrier = read(dir, 'carrier');
  return {
    name, type: Number(type), hwAddress, mtu: Number(read(dir, 'mtu') ?? '0'),
    mode: mode === 'datagram' || mode === 'connected' ? mode : null,
    carrier: carrier === null ? null : carrier === '1',
  };
}

/**
 * The port GUID of an IPoIB interface: the last 8 bytes of its 20-byte hardware address (the GID's
 * interface identifier). Throws NOT_INFINIBAND for anything else (a veth, an Ethernet NIC).
 */
export function portGuidOfInterface(info: KernelInterfaceInfo): bigint {
  if (info.type !== ARPHRD_INFINIBAND || info.hwAddress.length !== IPOIB_HW_ADDRESS_LENGTH) {
    throw new KernelInterfaceError('NOT_INFINIBAND',
      `${info.name} is not an InfiniBand interface (type ${info.type}, ${info.hwAddress.length}-byte hardware address)`);
  }
  return info.hwAddress.readBigUInt64BE(IPOIB_HW_ADDRESS_LENGTH - 8);
}
