package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// lockedBuffer is a process's stderr, read while it runs.
type lockedBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{mu: make(chan struct{}, 1)} }

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.b.String()
}

// startGuardProcess runs "pacswatch guard" as a user would and waits until it listens.
func startGuardProcess(t *testing.T, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"guard"}, args...)...)
	stderr := newLockedBuffer()
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	cmd.SysProcAttr = killedWithParent()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("guard stderr:\n%s", stderr.String())
		}
	})
	return cmd, stderr
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens on %s", addr)
}

func echoAs(addr, calling string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := ul.Dial(ctx, addr, ul.Config{CalledAE: "ORTHANC", CallingAE: calling, Contexts: dimse.ProposeQR()})
	if err != nil {
		return err
	}
	defer a.Close()
	if st, err := dimse.Echo(ctx, a); err != nil || st != dimse.Success {
		return fmt.Errorf("C-ECHO: %v, %v", st, err)
	}
	return a.Release(ctx)
}

// TestGuardCommand runs "pacswatch guard" in front of a real Orthanc: a scan of the guard says
// protected while a scan of the Orthanc behind it says what it exposes; the allowed AE passes;
// SIGHUP with a bad policy keeps the old one and says why, a good one takes effect; the metrics
// count it all.
func TestGuardCommand(t *testing.T) {
	o := peertest.StartOrthanc(t, peertest.OrthancConfig{Modalities: map[string]string{"scanner": "PACSWATCH"}})
	o.Upload(t, peertest.Generate(5, 3, "5"))
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	write := func(s string) {
		if err := os.WriteFile(pol, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("peers:\n  - name: ward\n    calling_ae: [WARD]\n    source: 127.0.0.1\n    services: [echo]\n")
	collector, received := syslogCollector(t)
	gport, mport := peertest.FreePort(t), peertest.FreePort(t)
	gaddr := fmt.Sprintf("127.0.0.1:%d", gport)
	audit := filepath.Join(dir, "audit.jsonl")
	cmd, stderr := startGuardProcess(t, "--listen", gaddr, "--upstream", fmt.Sprintf("127.0.0.1:%d", o.DICOMPort),
		"--policy", pol, "--audit", audit, "--metrics", fmt.Sprintf("127.0.0.1:%d", mport), "--syslog", collector, "--audit-source-id", "GUARD1")
	waitListening(t, gaddr)

	got := scanJSON(t, "127.0.0.1", "-p", fmt.Sprintf("%d,%d", gport, o.DICOMPort))
	guarded, direct := got[uint16(gport)], got[uint16(o.DICOMPort)]
	if guarded.Level() != probe.LevelProtected {
		t.Errorf("scan of the guard: level %v, want protected: %+v", guarded.Level(), guarded.DICOM)
	}
	if direct.Level() != probe.LevelRetrieve {
		t.Errorf("scan of the Orthanc behind it: level %v, want retrieve", direct.Level())
	}
	t.Logf("guard: %v; Orthanc directly: %v", guarded.Level(), direct.Level())
	waitFor(t, func() bool {
		s := received.String()
		return strings.Contains(s, "DICOM+RFC3881") && strings.Contains(s, `csd-code="110113"`) && strings.Contains(s, `AuditSourceID="GUARD1"`)
	}, "Security Alert over syslog for the scan's refused associations")

	if err := echoAs(gaddr, "WARD"); err != nil {
		t.Fatalf("WARD through the guard: %v", err)
	}
	write("peers: [") // a bad policy: the old one stays
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(stderr.String(), "policy reload failed") }, "a reload failure on stderr")
	if err := echoAs(gaddr, "WARD"); err != nil {
		t.Errorf("WARD after a bad reload: %v", err)
	}
	write("peers:\n  - name: lab\n    calling_ae: [LAB]\n    source: 127.0.0.1\n    services: [echo]\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(stderr.String(), "policy reloaded") }, "a reload on stderr")
	if err := echoAs(gaddr, "WARD"); err == nil {
		t.Errorf("WARD still admitted after the policy dropped it")
	}
	if err := echoAs(gaddr, "LAB"); err != nil {
		t.Errorf("LAB after the reload: %v", err)
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`pacswatch_guard_policy_reloads_total{result="error"} 1`,
		`pacswatch_guard_policy_reloads_total{result="ok"} 1`,
		`pacswatch_guard_associations_total{refusal="no-matching-peer",result="rejected"}`,
		`pacswatch_guard_requests_total{decision="forwarded",peer="ward",service="echo"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	b, err := os.ReadFile(audit)
	if err != nil || !strings.Contains(string(b), `"calling_ae":"PACSWATCH"`) {
		t.Errorf("audit log lacks the scan's refused association: %v\n%s", err, b)
	}
	if fi, err := os.Stat(audit); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode: %v %v", fi.Mode(), err)
	}
}

// syslogCollector listens on loopback and keeps what any connection sends.
func syslogCollector(t *testing.T) (string, *lockedBuffer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	buf := newLockedBuffer()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(buf, c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String(), buf
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("no %s", what)
}

func TestGuardUsage(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("peers:\n  - name: a\n    calling_ae: A\n    source: 127.0.0.1\n    services: [echo]\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("peers:\n  - name: a\n    calling_ae: A\n    source: 198.51.100.0/33\n"), 0o600)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"guard", "--check-policy", good}, 0, "valid: 1 peers"},
		{[]string{"guard", "--check-policy", bad}, 2, `line 4: peers[0].source: "198.51.100.0/33" is not an IP address or CIDR network`},
		{[]string{"guard", "--check-policy", filepath.Join(dir, "none.yaml")}, 2, "no such file or directory"},
		{[]string{"guard", "--listen", "127.0.0.1:0", "--policy", good}, 2, "guard needs --upstream"},
		{[]string{"guard", "--upstream", "127.0.0.1:1", "--policy", good}, 2, "guard needs --listen"},
		{[]string{"guard", "--listen-tls", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--policy", good}, 2, "--listen-tls needs --tls-cert"},
	}
	for _, tt := range tests {
		stdout, stderr, code := pacswatch(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
			t.Errorf("%v: exit %d, %q%q; want exit %d and %q", tt.args, code, stdout, stderr, tt.code, tt.want)
		}
		if code != 0 && strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: more than one line on stderr: %q", tt.args, stderr)
		}
	}
}
