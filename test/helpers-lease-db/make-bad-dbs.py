#!/usr/bin/python3
# Makes the databases the lease store must refuse, with Python's own sqlite3 module (an
# implementation independent of better-sqlite3 and of our schema code):
#   newer.db    - our table layout, but schema_version 99 (as a future ipoib-dhcpd would write)
#   foreign.db  - a valid SQLite database of some other program (no schema_version table)
#   corrupt.db  - a valid database whose page 2 (the lease table's b-tree) is overwritten with 0xA5
#   garbage.db  - not SQLite at all: a text file
# Usage: make-bad-dbs.py OUTDIR
import os, sqlite3, sys

out = sys.argv[1]

def make(name, statements):
    path = os.path.join(out, name)
    if os.path.exists(path):
        os.remove(path)
    con = sqlite3.connect(path)
    for s in statements:
        con.execute(s)
    con.commit()
    con.close()
    return path

make('newer.db', [
    'CREATE TABLE schema_version (version INTEGER NOT NULL)',
    'INSERT INTO schema_version VALUES (99)',
    'CREATE TABLE lease (address INTEGER PRIMARY KEY, subnet_id INTEGER, future_column TEXT)',
    "INSERT INTO lease VALUES (167837701, 1, 'from the future')",
])
make('foreign.db', [
    'CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)',
    "INSERT INTO moz_places VALUES (1, 'https://example.org/')",
])
p = make('corrupt.db', [
    'CREATE TABLE schema_version (version INTEGER NOT NULL)',
    'INSERT INTO schema_version VALUES (2)',
    'CREATE TABLE lease (address INTEGER PRIMARY KEY, hostname TEXT)',
] + ["INSERT INTO lease VALUES (%d, 'host%d')" % (i, i) for i in range(200)])
with open(p, 'r+b') as f:
    page = sqlite3.connect(p).execute('PRAGMA page_size').fetchone()[0]
    f.seek(page)          # page 2 onwards: the tables' b-tree pages
    f.write(b'\xa5' * page * 2)
with open(os.path.join(out, 'garbage.db'), 'w') as f:
    f.write('lease 10.0.0.5 { this is a text file, not a database }\n' * 50)
print('ok')
