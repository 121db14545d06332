// A measuring instrument, not product code: the fastest DHCPv4 "server" node:dgram can be on this
// machine's sockets. It keeps no state and writes nothing: every DISCOVER gets an OFFER and every
// REQUEST an ACK, copied from a pre-encoded template with the request's xid, flags, giaddr and
// chaddr patched in (RFC 2131 §4.3.1: htype/hlen echoed, hops 0, secs 0), yiaddr from a counter
// (a REQUEST gets the address it asks for: option 50, else ciaddr), and options 53 (message type),
// 54 (server identifier) and 51 (lease time). A relayed request (giaddr set) is answered at
// giaddr:67, as the real servers do; a direct one by broadcast to port 68. bench/server-perfdhcp
// runs it beside ipoib-dhcpd and Kea under the same perfdhcp steps, to show what perfdhcp and the
// netns/veth path carry at all (bench/dhcp-responder.c is the same in C).
//
//   node --import tsx bench/dhcp-responder.ts SERVER_ADDRESS [PORT]     (prints "ready" when bound)
import dgram from 'node:dgram';

const serverAddress = process.argv[2] ?? '0.0.0.0';
const port = Number(process.argv[3] ?? 67);
const sid = serverAddress.split('.').map(Number);
const LENGTH = 300;
const OPTIONS = 240;

function template(type: number): Buffer {
  const b = Buffer.alloc(LENGTH);
  b[0] = 2; // BOOTREPLY
  b.writeUInt32BE(0x63825363, 236);
  const opts = [53, 1, type, 54, 4, ...sid, 51, 4, 0, 0, 0x0e, 0x10, 255];
  Buffer.from(opts).copy(b, OPTIONS);
  return b;
}
const OFFER = template(2);
const ACK = template(5);

/** Option `code`'s 4-byte value as a number, or 0 (options field only: perfdhcp does not overload). */
function option4(buf: Buffer, code: number): number {
  for (let p = OPTIONS; p + 1 < buf.length;) {
    const c = buf[p]!;
    if (c === 0) { p++; continue; }
    if (c === 255) return 0;
    const len = buf[p + 1]!;
    if (c === code) return len === 4 && p + 6 <= buf.length ? buf.readUInt32BE(p + 2) : 0;
    p += 2 + len;
  }
  return 0;
}

let next = 0x0a600000 + 10; // 10.96.0.10
let answered = 0;
/** A relay sends many: its address as text is kept. */
let lastGiaddr = 0;
let lastGiaddrText = '';
const sock = dgram.createSocket({ type: 'udp4' });
sock.on('message', (req) => {
  if (req.length < OPTIONS + 3 || req[0] !== 1 || req.readUInt32BE(236) !== 0x63825363) return;
  const type = messageType(req);
  if (type !== 1 && type !== 3) return;
  const out = Buffer.allocUnsafe(LENGTH);
  (type === 1 ? OFFER : ACK).copy(out);
  out[1] = req[1]!; out[2] = req[2]!;
  req.copy(out, 4, 4, 8); // xid
  req.copy(out, 10, 10, 12); // flags
  req.copy(out, 24, 24, 44); // giaddr, chaddr
  const yiaddr = type === 1 ? next++ : (option4(req, 50) || req.readUInt32BE(12) || next++);
  out.writeUInt32BE(yiaddr >>> 0, 16);
  const giaddr = req.readUInt32BE(24);
  if (giaddr !== lastGiaddr) { lastGiaddr = giaddr; lastGiaddrText = `${req[24]}.${req[25]}.${req[26]}.${req[27]}`; }
  if (giaddr !== 0) sock.send(out, port, lastGiaddrText);
  else sock.send(out, port + 1, '255.255.255.255');
  answered++;
});

/** Option 53 (message type), or 0. */
function messageType(buf: Buffer): number {
  for (let p = OPTIONS; p + 2 < buf.length;) {
    const c = buf[p]!;
    if (c === 0) { p++; continue; }
    if (c === 255) return 0;
    if (c === 53) return buf[p + 2]!;
    p += 2 + buf[p + 1]!;
  }
  return 0;
}

sock.bind(port, '0.0.0.0', () => {
  sock.setBroadcast(true);
  sock.setRecvBufferSize(2048 * 1024);
  process.stdout.write('ready\n');
});
process.on('SIGTERM', () => { process.stderr.write(`answered ${answered}\n`); process.exit(0); });
