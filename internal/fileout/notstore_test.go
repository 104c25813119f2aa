package fileout_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/fileout"
)

func TestNotStore(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, name := range []string{"pacswatch.db", "pacswatch.db-wal", "other.md"} {
		if err := os.WriteFile(p(name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(p("pacswatch.db"), p("hard.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p("pacswatch.db"), p("soft.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, p("dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	store := p("pacswatch.db")
	for _, tc := range []struct {
		name, out, store string
		want             string // "" for no error
	}{
		{"same path", store, store, "is the store (--db)"},
		{"relative", "pacswatch.db", store, "pacswatch.db: is the store (--db); choose another file"},
		{"relative store", store, "pacswatch.db", "is the store (--db)"},
		{"unclean", "./sub/../pacswatch.db", store, "is the store"},
		{"wal", "pacswatch.db-wal", store, "write-ahead log"},
		{"shm, not there yet", "pacswatch.db-shm", store, "shared-memory"},
		{"journal, not there yet", "pacswatch.db-journal", "./pacswatch.db", "journal"},
		{"hard link", "hard.md", store, "hard.md: is the store"},
		{"symbolic link", "soft.md", store, "soft.md: is the store"},
		{"through a linked directory", p("dirlink/pacswatch.db"), store, "is the store"},
		{"wal through a linked directory, not there", "dirlink/pacswatch.db-shm", store, "shared-memory"},
		{"another file", "other.md", store, ""},
		{"a new file", "new.html", store, ""},
		{"store name in another directory", "sub/pacswatch.db", store, ""},
		{"similar name", "pacswatch.db-wal2", store, ""},
		{"stdout", "-", store, ""},
		{"none", "", store, ""},
		{"postgres", "x.md", "postgres://localhost/pacswatch", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fileout.NotStore(tc.out, tc.store)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("NotStore(%q, %q) = %v, want nil", tc.out, tc.store, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("NotStore(%q, %q) = %v, want an error with %q", tc.out, tc.store, err, tc.want)
			}
		})
	}
}
