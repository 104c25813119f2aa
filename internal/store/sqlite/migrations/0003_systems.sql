-- Schema version 3: per-system figures from an index (issue 11 point 4). Applied once, inside
-- the transaction that sets PRAGMA user_version = 3. A version 2 database keeps its rows: the
-- new columns are filled from the records.

-- dicom.honeypot (0 or 1) and exposure.retrieve of the record, so that Systems ranks a host's
-- ports and sums its figures without decoding records. studies and instances, which version 1
-- wrote and no query read, are what Systems sums now: rewritten from the records here, so that
-- they hold exactly what the records do.
ALTER TABLE results ADD COLUMN honeypot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN retrieve TEXT NOT NULL DEFAULT 'untested';
UPDATE results SET
	honeypot = coalesce(json_extract(record, '$.dicom.honeypot'), 0),
	retrieve = coalesce(json_extract(record, '$.exposure.retrieve'), 'untested'),
	studies = coalesce(json_extract(record, '$.exposure.studies'), 0),
	instances = coalesce(json_extract(record, '$.exposure.instances'), 0);

-- The probe's end time is in the record, and no query reads it apart.
ALTER TABLE results DROP COLUMN time;

-- Summary and Systems read this index alone, never the records: it holds every column they
-- count, and its (scan_seq, ip) prefix gives a scan's ports host by host (port, the rest of the
-- primary key, is in every entry).
DROP INDEX results_level;
CREATE INDEX results_level ON results (scan_seq, ip, level, status, association, honeypot, retrieve, studies, instances);
