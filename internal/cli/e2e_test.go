package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// scanDone tells the echo loop of TestOrthancResponsiveWhileGuessed that the scan ended.
var scanDone atomic.Bool

// binary is the pacswatch binary built once for the tests that run it as a user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pacswatch-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binary = filepath.Join(dir, "pacswatch")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/pacswatch")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build pacswatch: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// pacswatch runs the binary and returns stdout, stderr and the exit code.
func pacswatch(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return pacswatchIn(t, t.TempDir(), stdin, args...)
}

// pacswatchIn runs the binary in dir.
func pacswatchIn(t *testing.T, dir, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run pacswatch: %v", err)
	}
	return stdout.String(), stderr.String(), code
}

// scanJSON scans targets with the built binary and returns the results by port.
func scanJSON(t *testing.T, args ...string) map[uint16]probe.Result {
	t.Helper()
	db := filepath.Join(t.TempDir(), "scan.db")
	stdout, stderr, code := pacswatch(t, "", append([]string{"scan", "-q", "--db", db, "-o", "-", "--timeout", "3s", "--all-targets"}, args...)...)
	if code != 0 && code != 1 {
		t.Fatalf("pacswatch scan exited %d: %s", code, stderr)
	}
	out := map[uint16]probe.Result{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var r probe.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		if _, dup := out[r.Port]; dup {
			t.Fatalf("port %d reported twice", r.Port)
		}
		out[r.Port] = r
	}
	return out
}

func TestScanRealPeers(t *testing.T) {
	corpus := peertest.Generate(3, 6, "3")
	open := peertest.StartOrthanc(t, peertest.OrthancConfig{})                                     // Orthanc's defaults
	called := peertest.StartOrthanc(t, peertest.OrthancConfig{CheckCalledAET: true})               // guessable AE
	strict := peertest.StartOrthanc(t, peertest.OrthancConfig{Strict: true, CheckCalledAET: true}) // calling AE refused
	qr := peertest.StartDcmqrscp(t, []peertest.QRAE{{Title: "DCM4CHEE"}, {Title: "SECRET_ARCHIVE"}}, nil)
	qr.Store(t, "DCM4CHEE", "LOADER", corpus)
	closed := peertest.FreePort(t)
	notDICOM := httpLikeListener(t)

	ports := fmt.Sprintf("%d,%d,%d,%d,%d,%d", open.DICOMPort, called.DICOMPort, strict.DICOMPort, qr.Port, closed, notDICOM)
	got := scanJSON(t, "127.0.0.1", "-p", ports)

	type want struct {
		name        string
		port        int
		status      probe.Status
		association probe.Association
		calledAE    string
		aeCheck     probe.AECheck
		level       probe.Level
		reason      int
	}
	for _, w := range []want{
		{"orthanc defaults", open.DICOMPort, probe.StatusOpen, probe.AssociationAccepted, "ANY-SCP", probe.AECheckNone, probe.LevelEcho, 0},
		{"orthanc called-AE check", called.DICOMPort, probe.StatusOpen, probe.AssociationAccepted, "ORTHANC", probe.AECheckCalled, probe.LevelEcho, 0},
		{"orthanc strict", strict.DICOMPort, probe.StatusOpen, probe.AssociationRejected, "ORTHANC", probe.AECheckCalling, probe.LevelProtected, 3},
		{"dcmqrscp", qr.Port, probe.StatusOpen, probe.AssociationAccepted, "DCM4CHEE", probe.AECheckCalled, 0, 0},
		{"closed", closed, probe.StatusClosed, probe.AssociationNone, "", 0, probe.LevelClosed, 0},
		{"not dicom", notDICOM, probe.StatusOpen, probe.AssociationNone, "", 0, probe.LevelNotDICOM, 0},
	} {
		t.Run(w.name, func(t *testing.T) {
			r, ok := got[uint16(w.port)]
			if !ok {
				t.Fatalf("no result for port %d", w.port)
			}
			js, _ := json.Marshal(r)
			if r.Status != w.status {
				t.Errorf("status = %v, want %v\n%s", r.Status, w.status, js)
			}
			if w.level != 0 && r.Level() != w.level {
				t.Errorf("level = %v, want %v\n%s", r.Level(), w.level, js)
			}
			if w.association == probe.AssociationNone {
				if r.DICOM != nil {
					t.Errorf("dicom = %s, want none", js)
				}
				return
			}
			if r.DICOM == nil {
				t.Fatalf("no dicom section: %s", js)
			}
			d := r.DICOM
			if d.Association != w.association || d.CalledAE != w.calledAE || d.AECheck != w.aeCheck || d.CallingAE != "PACSWATCH" {
				t.Errorf("association %v called %q ae_check %v calling %q, want %v %q %v PACSWATCH\n%s",
					d.Association, d.CalledAE, d.AECheck, d.CallingAE, w.association, w.calledAE, w.aeCheck, js)
			}
			if w.reason != 0 && (d.Reject == nil || d.Reject.Reason != w.reason || d.Reject.Meaning == "") {
				t.Errorf("reject = %+v, want reason %d with its meaning", d.Reject, w.reason)
			}
			if d.Association == probe.AssociationAccepted {
				if !strings.HasPrefix(d.Product, "DCMTK") || d.ImplementationClassUID != "1.2.276.0.7230010.3.0.3.6.7" || d.MaxPDU == 0 {
					t.Errorf("identity product %q uid %q max_pdu %d, want DCMTK 3.6.7's", d.Product, d.ImplementationClassUID, d.MaxPDU)
				}
				if !d.Services.Echo {
					t.Errorf("services.echo false after an accepted association: %s", js)
				}
			}
		})
	}
}

// httpLikeListener answers every connection like a web server does to bytes it can't parse.
func httpLikeListener(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 512)
			c.Read(buf)
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// TestOrthancResponsiveWhileGuessed guesses 40 wrong called AE titles at an Orthanc that checks
// them, while another client keeps echoing it with the right one: every echo must stay fast.
// Orthanc stalls its whole listener while a rejected socket stays open (peers.md); pacswatch
// closes each socket as soon as it reads the reply.
func TestOrthancResponsiveWhileGuessed(t *testing.T) {
	peertest.Require(t, "echoscu")
	o := peertest.StartOrthanc(t, peertest.OrthancConfig{CheckCalledAET: true, AET: "HIDDEN_AE"})
	dict := filepath.Join(t.TempDir(), "dict.txt")
	var lines []string
	for i := range 40 {
		lines = append(lines, fmt.Sprintf("WRONG_AE_%02d", i))
	}
	if err := os.WriteFile(dict, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var slowest time.Duration
	var echoes int
	var echoErr error
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			start := time.Now()
			out, err := peertest.Run(t, "echoscu", "-aec", "HIDDEN_AE", "127.0.0.1", fmt.Sprint(o.DICOMPort))
			if err != nil {
				echoErr = fmt.Errorf("echo %d: %v: %s", i, err, out)
				return
			}
			slowest = max(slowest, time.Since(start))
			echoes++
			time.Sleep(10 * time.Millisecond)
			if i > 5 && scanDone.Load() {
				return
			}
		}
	}()
	got := scanJSON(t, fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), "--ae-dict", dict, "--max-ae-tries", "41")
	scanDone.Store(true)
	<-done
	if echoErr != nil {
		t.Fatal(echoErr)
	}
	r := got[uint16(o.DICOMPort)]
	if r.DICOM == nil || r.DICOM.Association != probe.AssociationRejected || r.DICOM.AECheck != probe.AECheckCalled {
		js, _ := json.Marshal(r)
		t.Fatalf("want every guess rejected with ae_check called, got %s", js)
	}
	t.Logf("%d echoes during the guessing, slowest %v", echoes, slowest)
	if slowest > 3*time.Second {
		t.Errorf("Orthanc stalled: an echo took %v while pacswatch guessed AE titles", slowest)
	}
}

// TestDemo runs `pacswatch demo` as the README's first command does: one command, the report
// written, exit 0, and the report holds the 2019 shape (Indian states, a trend).
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := pacswatchIn(t, dir, "", "demo")
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "demo-report.html"))
	if err != nil {
		t.Fatalf("demo wrote no demo-report.html: %v\n%s", err, stderr)
	}
	for _, want := range []string{"Maharashtra", "Karnataka", "Türkiye", "ugly", "good", "<svg"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("demo-report.html lacks %q", want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("demo left %d files behind, want only the report", len(ents))
	}
}
