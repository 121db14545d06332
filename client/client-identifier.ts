// The client identifier the client sends (option 61): RFC 4390 §2.1 makes it mandatory on IPoIB and
// RFC 4361 gives its form; IPOIB-FACTS §5.3 lists the forms servers are configured with. It is built
// from the port GUID (stable), never from the 20-byte hardware address (its QPN changes).

import {
  clientIdForm, formatClientId, ibGuidClientId, mellanoxClientId, parseClientIdText, portGuidOf,
} from '../protocol/index.js';

/**
 * `--client-id duid-en|guid|hex:...`:
 * - duid-en: ff:00:00:00:00:00:02:00:00:02:c9:00:<GUID> (RFC 4361 DUID-EN, the "Mellanox" form FlexBoot,
 *   xCAT and the dnsmasq/ISC examples use), the default;
 * - guid: 20:<GUID> (FlexBoot "HW Type IB", systemd/NM ClientIdentifier=mac);
 * - hex: exactly these bytes (type byte included).
 */
export type ClientIdChoice = { form: 'duid-en' } | { form: 'guid' } | { form: 'hex'; bytes: Buffer };

export class ClientIdChoiceError extends Error {
  override readonly name = 'ClientIdChoiceError';
  readonly code = 'BAD_CLIENT_ID';
}

/** Parses the `--client-id` argument; throws ClientIdChoiceError naming the value. */
export function parseClientIdChoice(text: string): ClientIdChoice {
  const t = text.trim();
  if (t === 'duid-en') return { form: 'duid-en' };
  if (t === 'guid') return { form: 'guid' };
  if (t.startsWith('hex:')) {
    let bytes: Buffer;
    try {
      bytes = parseClientIdText(t.slice(4));
    } catch {
      throw new ClientIdChoiceError(`--client-id ${JSON.stringify(text)}: not hex bytes`);
    }
    if (bytes.length < 2 || bytes.length > 255) {
      throw new ClientIdChoiceError(`--client-id ${JSON.stringify(text)}: ${bytes.length} byte(s); RFC 2132 §9.14 needs 2..255`);
    }
    return { form: 'hex', bytes };
  }
  throw new ClientIdChoiceError(`--client-id ${JSON.stringify(text)}: expected duid-en, guid or hex:<bytes>`);
}

export function formatClientIdChoice(c: ClientIdChoice): string {
  return c.form === 'hex' ? `hex:${formatClientId(c.bytes)}` : c.form;
}

/** Option 61 data for `choice` on a port with `portGuid`. */
export function buildClientId(choice: ClientIdChoice, portGuid: bigint): Buffer {
  switch (choice.form) {
    case 'duid-en': return mellanoxClientId(portGuid);
    case 'guid': return ibGuidClientId(portGuid);
    case 'hex': return Buffer.from(choice.bytes);
  }
}

/**
 * The identifier to use at start-up. A GUID-derived choice reuses the identifier of a saved lease
 * when that one has the same form: after an HA/bond failover followed by a restart the daemon comes
 * up on the other port, and the identity (hence the server's lease and reservations) must not follow
 * the port. An explicit hex identifier always wins.
 */
export function startupClientId(choice: ClientIdChoice, portGuid: bigint, saved: Buffer | null): Buffer {
  const built = buildClientId(choice, portGuid);
  if (choice.form === 'hex' || saved === null) return built;
  if (portGuidOf(saved) === null || clientIdForm(saved) !== clientIdForm(built)) return built;
  return Buffer.from(saved);
}
