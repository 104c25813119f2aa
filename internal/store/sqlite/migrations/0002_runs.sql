-- Schema version 2: trustworthy runs (issue 10). Applied once, inside the
-- transaction that sets PRAGMA user_version = 2. A version 1 database keeps
-- its rows: its scans read back with an empty digest and no exclusions.

-- Scan.SpaceDigest, Scan.Exclusions (JSON array of strings) and the
-- Progress.Excluded checkpoint, written with done.
ALTER TABLE scans ADD COLUMN space_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE scans ADD COLUMN exclusions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE scans ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0;

-- dicom.association of the record ('none' without a dicom object), so that
-- Summary counts DICOM answers without decoding records.
ALTER TABLE results ADD COLUMN association TEXT NOT NULL DEFAULT 'none';
UPDATE results SET association = json_extract(record, '$.dicom.association')
	WHERE json_extract(record, '$.dicom.association') IS NOT NULL;

-- Summary reads this index alone (it covers every column it counts), never
-- the records; its (scan_seq, level) prefix serves what results_level did.
DROP INDEX results_level;
CREATE INDEX results_level ON results (scan_seq, level, status, association);

-- One process runs a scan at a time: the holder of its lease (store.Lease).
-- expires is a time as in scans.
CREATE TABLE leases (
	scan_seq INTEGER PRIMARY KEY REFERENCES scans (seq) ON DELETE CASCADE,
	holder   TEXT NOT NULL,
	host     TEXT NOT NULL,
	pid      INTEGER NOT NULL,
	expires  TEXT NOT NULL
) STRICT;
