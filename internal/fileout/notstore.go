package fileout

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// storeFiles are the files of a SQLite store besides the database itself
// (sqlite.org/tempfiles.html: the write-ahead log, its shared-memory index, the rollback journal).
var storeFiles = []struct{ suffix, what string }{
	{"", "the store"},
	{"-wal", "the store's write-ahead log"},
	{"-shm", "the store's shared-memory file"},
	{"-journal", "the store's journal"},
}

// NotStore refuses an output path that is the store at storePath or one of its -wal, -shm and
// -journal files: by cleaned absolute path (directories' symbolic links resolved), and for
// files that exist by identity (os.SameFile: a hard link or a symbolic link to the store).
// An empty out, "-" (stdout) and a PostgreSQL URL as storePath are never refused.
func NotStore(out, storePath string) error {
	if out == "" || out == "-" || storePath == "" ||
		strings.HasPrefix(storePath, "postgres://") || strings.HasPrefix(storePath, "postgresql://") {
		return nil
	}
	outNames := names(out)
	outInfo, outErr := os.Stat(out)
	for _, sf := range storeFiles {
		p := storePath + sf.suffix
		same := false
		for _, n := range names(p) {
			for _, o := range outNames {
				same = same || n == o
			}
		}
		if !same && outErr == nil {
			if info, err := os.Stat(p); err == nil {
				same = os.SameFile(outInfo, info)
			}
		}
		if same {
			return fmt.Errorf("%s: is %s (--db); choose another file", Show(out), sf.what)
		}
	}
	return nil
}

// names returns the cleaned absolute forms of path: as written, and with its directory's
// symbolic links resolved when it exists.
func names(path string) []string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	out := []string{abs}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		out = append(out, filepath.Join(dir, filepath.Base(abs)))
	}
	return out
}
