package cli

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/discover"
)

// synRefusedEnv marks the child of TestSYNFlag that runs without CAP_NET_RAW.
const synRefusedEnv = "PACSWATCH_SYN_REFUSED_CHILD"

// TestSYNFlag: --syn takes auto, on or off; on fails with one line when raw sockets are
// refused (checked in a child without CAP_NET_RAW when this test runs as root); auto falls
// back to connect() there.
func TestSYNFlag(t *testing.T) {
	base := scaleFlags{discover: "connect", connectTimeout: time.Second}
	refused := discover.SYNAvailable() != nil
	for _, tc := range []struct {
		syn     string
		wantErr string
		use     bool
	}{
		{"bogus", `--syn: "bogus" is not auto, on or off`, false},
		{"off", "", false},
		{"auto", "", !refused},
		{"on", map[bool]string{true: "scan: --syn on: raw sockets are refused", false: ""}[refused], true},
	} {
		f := base
		f.syn = tc.syn
		err := f.check()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("--syn %s: %v", tc.syn, err)
		case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n")):
			t.Errorf("--syn %s: error %v, want one line starting %q", tc.syn, err, tc.wantErr)
		case err == nil && f.useSYN() != tc.use:
			t.Errorf("--syn %s: SYN stage %v, want %v", tc.syn, f.useSYN(), tc.use)
		}
	}
	if os.Getenv(synRefusedEnv) != "" {
		if !refused {
			t.Fatal("the child without CAP_NET_RAW may open raw sockets")
		}
		return
	}
	if os.Getuid() != 0 || refused {
		return
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("PACSWATCH_REQUIRE_PEERS") == "1" {
			t.Fatal("setpriv is missing (PACSWATCH_REQUIRE_PEERS=1)")
		}
		t.Skip("setpriv is missing: the refused case is not checked")
	}
	cmd := exec.Command(setpriv, "--bounding-set=-net_raw", "--inh-caps=-net_raw",
		os.Args[0], "-test.run=^TestSYNFlag$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), synRefusedEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestSYNFlag") {
		t.Fatalf("without CAP_NET_RAW: %v\n%s", err, out)
	}
}
