package cli_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// simPorts are unprivileged ports below the ephemeral range, for the sim in tests.
const simPorts = "20104,21112,24242,22761,22762"

// startSim runs pacswatch sim with args and waits for its ready line; it stops the sim with
// SIGINT when the test ends and checks that it exits 0. It returns the sim's process.
func startSim(t *testing.T, dir string, args ...string) (*os.Process, time.Duration) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"sim"}, args...)...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.HasSuffix(sc.Text(), " ready") {
				ready <- sc.Text()
			}
		}
		if len(lines) > 0 && !strings.HasSuffix(lines[len(lines)-1], " ready") {
			ready <- strings.Join(lines, "\n")
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "sim: ") || !strings.HasSuffix(line, " ready") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("sim did not start: %s", line)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("sim not ready after 60 s")
	}
	took := time.Since(start)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sim exited with %v after SIGINT", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("sim still running 30 s after SIGINT")
		}
	})
	return cmd.Process, took
}

// rssKB reads a process's resident set size (VmRSS) and its peak (VmHWM), in kB.
func rssKB(t *testing.T, pid int) (rss, hwm int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm
}

// TestSimScanScore is the sim's acceptance test: 2,000 simulated hosts start in seconds, a full
// scan of their 4,096 addresses × 5 ports scores perfectly against the truth (levels, AE
// checks, TLS, exact counts for every non-hostile host, every hostile host classified within
// its deadline), and the sim's memory stays flat.
func TestSimScanScore(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 2,000 simulated hosts; skipped with -short")
	}
	dir := t.TempDir()
	truth := filepath.Join(dir, "truth.json")
	proc, took := startSim(t, dir, "--hosts", "2000", "--seed", "11", "--cidr", "127.12.0.0/20", "--ports", simPorts,
		"--truth", truth, "--latency", "300ms", "--duration", "10m")
	if took > 15*time.Second {
		t.Errorf("sim of 2,000 hosts took %v to start, want seconds", took)
	}
	rss0, _ := rssKB(t, proc.Pid)

	results := filepath.Join(dir, "results.jsonl")
	start := time.Now()
	_, stderr, code := pacswatchIn(t, dir, "", "scan", "127.12.0.0/20", "-p", simPorts, "--rate", "0", "--timeout", "3s",
		"--max-host-time", "60s", "-q", "--db", filepath.Join(dir, "scan.db"), "-o", results)
	if code > 1 {
		t.Fatalf("scan exited %d: %s", code, stderr)
	}
	elapsed := time.Since(start)
	rss1, hwm := rssKB(t, proc.Pid)

	out, stderr, code := pacswatchIn(t, dir, "", "sim", "score", "--truth", truth, "--results", results, "--strict")
	if code != 0 {
		t.Fatalf("score exited %d (%s):\n%s", code, stderr, out)
	}
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "score perfect") ||
		!strings.Contains(out, "results 2000, duplicates 0, truth hosts 2000, missing 0") { // only what answered is kept
		t.Errorf("score output:\n%s", out)
	}
	t.Logf("scan of 20,480 targets in %v; sim RSS %d kB at start, %d kB after the scan (peak %d kB)", elapsed, rss0, rss1, hwm)
	if rss1 > 2*rss0+64<<10 {
		t.Errorf("sim RSS grew from %d kB to %d kB during the scan", rss0, rss1)
	}
}

func TestSimBadInput(t *testing.T) {
	dir := t.TempDir()
	truth := filepath.Join(dir, "truth.json")
	if err := os.WriteFile(truth, []byte(`{"cidr":"127.12.32.0/24","ports":[20104],"hosts":[{"addr":"127.12.32.1:20104","personality":"open","level":"query","studies":3}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"hosts": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"private cidr", []string{"sim", "--cidr", "10.0.0.0/8"}},
		{"public cidr", []string{"sim", "--cidr", "192.0.2.0/24", "--hosts", "1"}},
		{"bad cidr", []string{"sim", "--cidr", "127.12.0.0/99"}},
		{"no hosts", []string{"sim", "--hosts", "0"}},
		{"too many hosts", []string{"sim", "--hosts", "300", "--cidr", "127.12.32.0/24"}},
		{"bad mix", []string{"sim", "--mix", "bogus=1"}},
		{"bad ports", []string{"sim", "--ports", "0"}},
		{"arguments", []string{"sim", "127.12.0.1"}},
		{"score without truth", []string{"sim", "score", "--results", truth}},
		{"score missing truth", []string{"sim", "score", "--truth", filepath.Join(dir, "none.json")}},
		{"score bad truth", []string{"sim", "score", "--truth", bad}},
		{"score bad results", []string{"sim", "score", "--truth", truth, "--results", bad}},
		{"score bad format", []string{"sim", "score", "--truth", truth, "--format", "xml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := pacswatchIn(t, dir, "", tc.args...)
			if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "pacswatch: ") {
				t.Errorf("exit %d, stderr %q; want 2 and one line", code, stderr)
			}
		})
	}
}

func TestSimScore(t *testing.T) {
	dir := t.TempDir()
	truth := filepath.Join(dir, "truth.json")
	if err := os.WriteFile(truth, []byte(`{"cidr":"127.12.32.0/24","ports":[20104],"hosts":[
		{"addr":"127.12.32.1:20104","personality":"query-only","level":"query","ae_check":"none","retrieve":"refused","studies":3,"instances":7,"modalities":{"CT":3}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	right := `{"ip":"127.12.32.1","port":20104,"status":"open","dicom":{"association":"accepted","ae_check":"none","tls":false,"services":{}},"exposure":{"level":"query","studies":3,"studies_exact":true,"instances":7,"instances_source":"study-attr","modalities":{"CT":3},"retrieve":"refused"}}
{"ip":"127.12.32.2","port":20104,"status":"closed"}
`
	wrong := strings.Replace(right, `"studies":3`, `"studies":2`, 1)
	for _, tc := range []struct {
		name    string
		results string
		args    []string
		code    int
		perfect bool
	}{
		{"perfect", right, []string{"--strict"}, 0, true},
		{"wrong count", wrong, nil, 0, false},
		{"wrong count strict", wrong, []string{"--strict"}, 1, false},
		{"missing strict", "", []string{"--strict"}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"sim", "score", "--truth", truth, "--format", "json"}, tc.args...)
			out, stderr, code := pacswatchIn(t, dir, tc.results, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			var got struct {
				Perfect bool `json:"perfect"`
				Results int  `json:"results"`
				Counts  []struct {
					Field string `json:"field"`
					Exact int    `json:"exact"`
				} `json:"counts"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if got.Perfect != tc.perfect || got.Results != strings.Count(tc.results, "\n") {
				t.Errorf("perfect %v results %d, want %v %d\n%s", got.Perfect, got.Results, tc.perfect, strings.Count(tc.results, "\n"), out)
			}
		})
	}
}
