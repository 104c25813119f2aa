package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tests of SPEC "Scale and discovery" at the command line (issue 12). Every scan runs in a
// network namespace of its own (newNetns): loopback only.

func TestScanScaleFlags(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown discovery", []string{"--discover", "masscan"}, `--discover: "masscan" is not connect or zmap`},
		{"zmap args without zmap", []string{"--zmap-args", "-i eth0"}, "--zmap-args goes with --discover zmap"},
		{"no connect timeout", []string{"--connect-timeout", "0s"}, "--connect-timeout must be > 0"},
		{"zmap and host:port", []string{"--discover", "zmap", "127.0.0.2:9"}, "host:port targets need connect discovery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"scan", "127.0.0.1", "-p", "9", "-q", "--db", filepath.Join(dir, tc.name+".db")}, tc.args...)
			_, stderr, code := ns.run(t, dir, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			singleLine(t, tc.name, stderr, tc.want)
		})
	}
}

// TestScanZMapMissing: --discover zmap without zmap installed says so in one line, exit 2.
func TestScanZMapMissing(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	cmd := ns.command("env", "PATH="+dir, binary, "scan", "127.0.0.1", "-p", "9", "-q", "--discover", "zmap", "--db", filepath.Join(dir, "z.db"))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("scan --discover zmap without zmap: %v, want exit 2; output %q", err, out)
	}
	singleLine(t, "no zmap", string(out), "zmap is not installed (Debian: apt-get install zmap)")
}

// TestScanCountsNotStores: closed targets are counted, not stored nor written to -o; the summary
// gives the targets probed; --all-targets stores them; -iL reads ZMap's CSV.
func TestScanCountsNotStores(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	_, stderr, code := ns.run(t, dir, "scan", "127.0.0.0/28", "-p", "9", "--db", "a.db", "-o", "a.jsonl")
	if code != 0 {
		t.Fatalf("scan: exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.jsonl")); err != nil || len(b) != 0 {
		t.Errorf("-o holds %q, %v: want nothing (every target closed)", b, err)
	}
	if !strings.Contains(stderr, "16 targets probed; 16 closed, 0 filtered, 0 unreachable: counted, not stored") {
		t.Errorf("summary %q: want 16 targets probed, 16 closed", stderr)
	}
	if _, sum := scanState(t, filepath.Join(dir, "a.db")); sum.Results != 0 || sum.Closed != 16 || sum.Probed() != 16 {
		t.Errorf("store summary %+v: want no results, 16 closed", sum)
	}

	_, stderr, code = ns.run(t, dir, "scan", "127.0.0.0/28", "-p", "9", "--db", "b.db", "-o", "b.jsonl", "--all-targets")
	if code != 0 {
		t.Fatalf("scan --all-targets: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b.jsonl")); strings.Count(string(b), `"status":"closed"`) != 16 {
		t.Errorf("--all-targets: -o holds %d closed records, want 16", strings.Count(string(b), `"status":"closed"`))
	}

	csv := "saddr,daddr,sport,classification,success\n127.0.0.5,127.0.0.1,9,synack,1\n127.0.0.6,127.0.0.1,10,synack,1\n"
	if err := os.WriteFile(filepath.Join(dir, "hits.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = ns.run(t, dir, "scan", "-iL", "hits.csv", "--db", "c.db")
	if code != 0 {
		t.Fatalf("scan -iL hits.csv: exit %d: %s", code, stderr)
	}
	if sc, sum := scanState(t, filepath.Join(dir, "c.db")); sc.Total != 2 || sum.Probed() != 2 ||
		strings.Join(sc.Targets, " ") != "127.0.0.5:9 127.0.0.6:10" {
		t.Errorf("-iL ZMap CSV: scan %v of %d targets, %d probed; want 127.0.0.5:9 and 127.0.0.6:10", sc.Targets, sc.Total, sum.Probed())
	}
}
