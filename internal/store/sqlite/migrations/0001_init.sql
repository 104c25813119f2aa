-- Schema version 1. Applied once, inside the transaction that sets
-- PRAGMA user_version = 1 and PRAGMA application_id.

-- meta holds per-database values: the HMAC secret for study UIDs.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;

-- Times are UTC text of fixed width (2006-01-02T15:04:05.000000000Z), so
-- they sort as times. uint64 values are stored as their int64 bit pattern.
CREATE TABLE scans (
	seq      INTEGER PRIMARY KEY,         -- creation order; assigned IDs are its decimal form
	id       TEXT NOT NULL UNIQUE,
	name     TEXT NOT NULL,
	started  TEXT NOT NULL,
	finished TEXT,                        -- NULL while the scan runs
	targets  TEXT NOT NULL,               -- JSON array of strings
	settings TEXT NOT NULL,               -- JSON object of strings
	total    INTEGER NOT NULL,
	seed     INTEGER NOT NULL,
	shard    TEXT NOT NULL,
	done     INTEGER NOT NULL DEFAULT 0   -- Progress.Done checkpoint
) STRICT;

CREATE INDEX scans_started ON scans (started, seq);

-- One row per (scan, ip, port). ip is 0x04 and 4 bytes for IPv4, or 0x06,
-- 16 bytes and the zone for IPv6, so that it sorts as netip.Addr.Compare.
-- record is the sanitized result record as SPEC JSON; the other columns
-- repeat the fields that queries filter on.
CREATE TABLE results (
	scan_seq  INTEGER NOT NULL REFERENCES scans (seq) ON DELETE CASCADE,
	ip        BLOB NOT NULL,
	port      INTEGER NOT NULL,
	time      TEXT NOT NULL,
	status    TEXT NOT NULL,
	level     TEXT NOT NULL,
	studies   INTEGER NOT NULL,
	instances INTEGER NOT NULL,
	record    TEXT NOT NULL,
	PRIMARY KEY (scan_seq, ip, port)
) STRICT, WITHOUT ROWID;

CREATE INDEX results_level ON results (scan_seq, level);
