-- Schema version 1 of a PostgreSQL store: what SQLite's versions 1 to 3 hold, in one step.
-- Applied once, inside the transaction that creates pacswatch_schema, under an advisory lock:
-- shard processes that start at once migrate one after the other.

-- The mark of a pacswatch store, and its schema version (one row).
CREATE TABLE pacswatch_schema (
	version integer NOT NULL
);

-- meta holds per-database values: the HMAC secret for study UIDs.
CREATE TABLE meta (
	key   text PRIMARY KEY,
	value bytea NOT NULL
);

-- Assigned scan IDs are the decimal form of a number from here, skipping IDs a caller chose.
CREATE SEQUENCE scan_numbers;

-- One row per scan, that is per shard of a run (store.Groups gathers a run's shards). Times are
-- UTC text of fixed width (2006-01-02T15:04:05.000000000Z), as in SQLite, so that they keep
-- their nanoseconds and sort as times. uint64 values are stored as their int64 bit pattern.
CREATE TABLE scans (
	seq          bigint PRIMARY KEY,   -- creation order
	id           text NOT NULL UNIQUE,
	name         text NOT NULL,
	started      text NOT NULL,
	finished     text,                 -- NULL while the scan runs
	targets      text NOT NULL,        -- JSON array of strings
	settings     text NOT NULL,        -- JSON object of strings
	total        bigint NOT NULL,
	seed         bigint NOT NULL,
	shard        text NOT NULL,
	space_digest text NOT NULL DEFAULT '',
	exclusions   text NOT NULL DEFAULT '[]', -- JSON array of strings
	done         bigint NOT NULL DEFAULT 0,  -- Progress.Done checkpoint
	excluded     bigint NOT NULL DEFAULT 0   -- Progress.Excluded, written with done
);

CREATE INDEX scans_started ON scans (started, seq);

-- One row per (scan, ip, port). ip is 0x04 and 4 bytes for IPv4, or 0x06, 16 bytes and the
-- zone for IPv6: bytea compares byte by byte, so keys sort as netip.Addr.Compare. record is the
-- sanitized result record as SPEC JSON; the other columns repeat what queries count.
CREATE TABLE results (
	scan_seq    bigint NOT NULL REFERENCES scans (seq) ON DELETE CASCADE,
	ip          bytea NOT NULL,
	port        integer NOT NULL,
	status      text NOT NULL,
	level       text NOT NULL,
	association text NOT NULL,         -- dicom.association, 'none' without a dicom object
	honeypot    boolean NOT NULL,      -- dicom.honeypot
	retrieve    text NOT NULL,         -- exposure.retrieve, 'untested' without an exposure
	studies     bigint NOT NULL,
	instances   bigint NOT NULL,
	record      text NOT NULL,
	PRIMARY KEY (scan_seq, ip, port)
);

-- Summary and Systems read this index, never the records: its (scan_seq, ip) prefix gives a
-- scan's ports host by host, and it holds every column they count.
CREATE INDEX results_level ON results (scan_seq, ip)
	INCLUDE (port, level, status, association, honeypot, retrieve, studies, instances);

-- One process runs a scan (a shard) at a time: the holder of its lease (store.Lease).
CREATE TABLE leases (
	scan_seq bigint PRIMARY KEY REFERENCES scans (seq) ON DELETE CASCADE,
	holder   text NOT NULL,
	host     text NOT NULL,
	pid      integer NOT NULL,
	expires  text NOT NULL
);
