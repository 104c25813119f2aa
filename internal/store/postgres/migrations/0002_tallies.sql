-- Schema version 2: targets counted, not stored (issue 12), as SQLite's version 4. Per scan, the
-- checkpoint's tallies (store.Progress.Tallies) as JSON: an array of
-- [port, closed, filtered, unreachable, excluded] arrays, written with the checkpoint in the
-- transaction of the results it goes with. A version 1 scan has none.
ALTER TABLE scans ADD COLUMN tallies text NOT NULL DEFAULT '[]';
