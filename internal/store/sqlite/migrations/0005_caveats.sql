-- Schema version 5: counts kept apart from the totals (issue 15). Applied once, inside the
-- transaction that sets PRAGMA user_version = 5. A version 4 database keeps its rows: the new
-- column is filled from the records.

-- store.ApartOf the record: 0 counted, 1 a lower bound (a "capped" caveat: the system counts,
-- its studies and images in no total), 2 left out (a honeypot, or an "implausible" caveat), so
-- that Systems sums the totals without decoding records. The expression is apartFromRecord's in
-- systems.go, which reads stores of older versions.
ALTER TABLE results ADD COLUMN apart INTEGER NOT NULL DEFAULT 0;
UPDATE results SET apart = CASE
	WHEN coalesce(record ->> '$.dicom.honeypot', 0) THEN 2
	WHEN EXISTS (SELECT 1 FROM json_each(record, '$.exposure.caveats')
		WHERE value ->> '$.kind' IN ('honeypot', 'implausible')) THEN 2
	WHEN EXISTS (SELECT 1 FROM json_each(record, '$.exposure.caveats')
		WHERE value ->> '$.kind' = 'capped') THEN 1
	ELSE 0 END;

-- Systems reads this index alone, never the records: apart joins the columns it counts.
DROP INDEX results_level;
CREATE INDEX results_level ON results (scan_seq, ip, level, status, association, honeypot, retrieve, studies, instances, apart);
