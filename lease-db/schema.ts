// The lease schema as an ordered list of forward migrations, one list for both backends (each
// step in SQLite's and PostgreSQL's dialect). A database records the last step applied in
// schema_version; opening runs the missing steps in order, and refuses a database whose
// version is above SCHEMA_VERSION (written by a newer program) rather than guess.

export interface Migration {
  version: number;
  why: string;
  sqlite: readonly string[];
  pg: readonly string[];
}

const STATES = "('offered','bound','released','expired','declined')";

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    why: 'the lease table, keyed by address, with the lookups the server makes',
    sqlite: [
      `CREATE TABLE lease (
        address INTEGER PRIMARY KEY CHECK (address BETWEEN 0 AND 4294967295),
        subnet_id INTEGER NOT NULL,
        client_id BLOB,
        port_guid INTEGER,
        hwaddr BLOB CHECK (hwaddr IS NULL OR length(hwaddr) = 20),
        hostname TEXT,
        state TEXT NOT NULL CHECK (state IN ${STATES}),
        start_time INTEGER NOT NULL,
        expiry INTEGER NOT NULL,
        server TEXT NOT NULL,
        version INTEGER NOT NULL)`,
      'CREATE INDEX lease_client ON lease (subnet_id, client_id)',
      'CREATE INDEX lease_guid ON lease (port_guid) WHERE port_guid IS NOT NULL',
      'CREATE INDEX lease_hwaddr ON lease (hwaddr) WHERE hwaddr IS NOT NULL',
      'CREATE INDEX lease_state ON lease (state, address)',
      'CREATE INDEX lease_subnet ON lease (subnet_id, address)',
      `CREATE INDEX lease_expiry ON lease (expiry) WHERE state IN ('offered','bound','declined')`,
    ],
    pg: [
      `CREATE TABLE lease (
        address BIGINT PRIMARY KEY CHECK (address BETWEEN 0 AND 4294967295),
        subnet_id BIGINT NOT NULL,
        client_id BYTEA,
        port_guid BIGINT,
        hwaddr BYTEA CHECK (hwaddr IS NULL OR length(hwaddr) = 20),
        hostname TEXT,
        state TEXT NOT NULL CHECK (state IN ${STATES}),
        start_time BIGINT NOT NULL,
        expiry BIGINT NOT NULL,
        server TEXT NOT NULL,
        version INTEGER NOT NULL)`,
      'CREATE INDEX lease_client ON lease (subnet_id, client_id)',
      'CREATE INDEX lease_guid ON lease (port_guid) WHERE port_guid IS NOT NULL',
      'CREATE INDEX lease_hwaddr ON lease (hwaddr) WHERE hwaddr IS NOT NULL',
      'CREATE INDEX lease_state ON lease (state, address)',
      'CREATE INDEX lease_subnet ON lease (subnet_id, address)',
      `CREATE INDEX lease_expiry ON lease (expiry) WHERE state IN ('offered','bound','declined')`,
    ],
  },
  {
    version: 2,
    why: 'op_id names the write that last touched a lease, so a write retried after a lost connection is recognised as already done',
    sqlite: ['ALTER TABLE lease ADD COLUMN op_id TEXT'],
    pg: [
      'ALTER TABLE lease ADD COLUMN op_id TEXT',
      'CREATE INDEX lease_op ON lease (op_id) WHERE op_id IS NOT NULL',
    ],
  },
];

export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export const LEASE_COLUMNS =
  'address, subnet_id, client_id, port_guid, hwaddr, hostname, state, start_time, expiry, server, version';
