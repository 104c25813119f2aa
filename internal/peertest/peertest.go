// Package peertest starts real DICOM peers on loopback for integration tests: Orthanc, and dcmtk's
// dcmqrscp and storescp, with synthetic data that contains no real patient data; and, for what
// no real peer does on demand, a server that resets every connection it accepts (Resetter).
//
// Peers are looked up on PATH. When one is missing, Require skips the test with the reason, or fails
// it when PACSWATCH_REQUIRE_PEERS=1 (as CI sets it): an integration test must never pass by not running.
//
// Neither Orthanc 1.10 nor dcmqrscp 3.6.7 can choose a listen address: both bind 0.0.0.0:PORT.
// Tests only ever connect to them on 127.0.0.1.
package peertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing peer into a test failure.
const RequireEnv = "PACSWATCH_REQUIRE_PEERS"

// Required reports whether missing peers must fail tests rather than skip them.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Require returns the path of each named program, or ends the test: Fatal under
// PACSWATCH_REQUIRE_PEERS=1, Skip (saying which program is missing) otherwise.
func Require(t testing.TB, programs ...string) []string {
	t.Helper()
	paths := make([]string, 0, len(programs))
	for _, p := range programs {
		path, err := exec.LookPath(p)
		if err != nil {
			msg := fmt.Sprintf("peer %q not installed (apt-get install orthanc orthanc-dicomweb dcmtk)", p)
			if Required() {
				t.Fatalf("%s and %s=1", msg, RequireEnv)
			}
			t.Skip(msg)
		}
		paths = append(paths, path)
	}
	return paths
}

// FreePort returns a TCP port that was free on 127.0.0.1 and 0.0.0.0 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatalf("find free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		portsMu.Lock()
		taken := portsUsed[port]
		portsUsed[port] = true
		portsMu.Unlock()
		if !taken {
			return port
		}
	}
	t.Fatal("no free port found")
	return 0
}

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{} // ports handed out in this process, never reused
)

// process is a peer started by a test, killed (with its process group) at cleanup.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
}

// start runs a peer with TCP_NODELAY=1 (peers.md: DCMTK's Nagle costs ~40 ms per exchange),
// in its own process group, killed when the test ends or the test binary dies.
func start(t testing.TB, dir, logName string, argv ...string) *process {
	t.Helper()
	logPath := filepath.Join(dir, logName)
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create %s: %v", logPath, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr(syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", argv[0], err)
	}
	p := &process{name: filepath.Base(argv[0]), cmd: cmd, log: logPath}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (last 2 KiB):\n%s", p.name, tail(b, 2048))
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitPort waits until 127.0.0.1:port accepts a connection, or the process exits, or 30 s pass.
func (p *process) waitPort(t testing.TB, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.cmd.ProcessState != nil || processGone(p.cmd.Process.Pid) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited before listening on %s:\n%s", p.name, addr, tail(b, 2048))
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s within 30 s", p.name, addr)
}

func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// state is the field after the ")" that closes the command name; Z is a zombie.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

// run runs a dcmtk client to completion with a timeout, returning its combined output.
func run(ctx context.Context, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return string(out), fmt.Errorf("%s timed out", argv[0])
	}
	return string(out), err
}

// Run runs a dcmtk client (echoscu, findscu, getscu, storescu, ...) and returns its combined
// output and error. Tests use it to check that our SCP answers the reference SCUs.
func Run(t testing.TB, argv ...string) (string, error) {
	t.Helper()
	Require(t, argv[0])
	return run(context.Background(), argv...)
}

func itoa(n int) string { return strconv.Itoa(n) }
