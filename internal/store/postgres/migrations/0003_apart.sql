-- Schema version 3: counts kept apart from the totals (issue 15), as SQLite's version 5.
-- store.ApartOf the record: 0 counted, 1 a lower bound (a "capped" caveat), 2 left out (a
-- honeypot, or an "implausible" caveat), so that Systems sums the totals without decoding
-- records. Existing rows are filled from their records.
ALTER TABLE results ADD COLUMN apart smallint NOT NULL DEFAULT 0;
UPDATE results SET apart = CASE
	WHEN coalesce((record::jsonb #>> '{dicom,honeypot}')::boolean, false) THEN 2
	WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(record::jsonb #> '{exposure,caveats}', '[]'::jsonb)) c
		WHERE c ->> 'kind' IN ('honeypot', 'implausible')) THEN 2
	WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(record::jsonb #> '{exposure,caveats}', '[]'::jsonb)) c
		WHERE c ->> 'kind' = 'capped') THEN 1
	ELSE 0 END;
