-- Schema version 4: targets counted, not stored (issue 12). Applied once, inside the transaction
-- that sets PRAGMA user_version = 4. A version 3 database keeps its rows: its scans have no
-- tallies (their closed and filtered targets are rows of results).

-- store.Progress.Tallies: per scan and port, the targets below the checkpoint that have no
-- stored result. Written with the checkpoint, in the transaction of the results it goes with;
-- each write replaces the scan's rows. Counts are uint64 stored as their int64 bit pattern.
CREATE TABLE tallies (
	scan_seq    INTEGER NOT NULL REFERENCES scans (seq) ON DELETE CASCADE,
	port        INTEGER NOT NULL,
	closed      INTEGER NOT NULL DEFAULT 0,
	filtered    INTEGER NOT NULL DEFAULT 0,
	unreachable INTEGER NOT NULL DEFAULT 0,
	excluded    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (scan_seq, port)
) STRICT, WITHOUT ROWID;
