// Package pgtest runs a throwaway PostgreSQL server for tests and benchmarks: Debian's
// postgresql (initdb, postgres) in a temporary directory, as an unprivileged user when the
// process is root (initdb refuses root), listening on a Unix socket in that directory and on no
// TCP port, so that it works in an empty network namespace and reaches nothing beyond it.
//
// Tests call DB for a fresh database; a package that does writes TestMain as pgtest.Main(m), so
// that the server the package started is stopped when its tests end. Without PostgreSQL the
// tests skip, and fail under PACSWATCH_REQUIRE_PEERS=1 (CI), as peertest's do.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// nobody is the user and group a root process runs the server as.
const nobody = 65534

// User is the server's superuser, whom URLs connect as (trust authentication on the socket).
const User = "pacswatch"

// Options shape a server.
type Options struct {
	// Durable keeps PostgreSQL's defaults (fsync, synchronous commit, full page writes), as a
	// production server runs: for benchmarks. Tests leave it false, which is faster.
	Durable bool
	// Dir is where the data directory and the socket go; a new temporary directory when empty.
	Dir string
}

// Server is a running PostgreSQL server.
type Server struct {
	dir     string // holds data/ and the socket
	ownsDir bool   // Stop removes dir
	cmd     *exec.Cmd
	exited  chan struct{}
	log     string // the server's log file

	mu sync.Mutex // protects n
	n  int        // databases created
}

// Bin returns the directory of Debian's PostgreSQL programs (the newest version installed), or
// of initdb on PATH, or an error saying what to install.
func Bin() (string, error) {
	if dir := os.Getenv("PACSWATCH_PG_BIN"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return len(a) - len(b) }) // "9" < "15"
	for _, dir := range slices.Backward(dirs) {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL is not installed (apt-get install postgresql)")
}

// Start initializes a data directory and starts a server on it.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: opts.Dir, exited: make(chan struct{})}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "pacswatch-pg-"); err != nil {
			return nil, err
		}
		s.ownsDir = true
	}
	if err := s.start(ctx, bin, opts); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, bin string, opts Options) error {
	data := filepath.Join(s.dir, "data")
	s.log = filepath.Join(s.dir, "server.log")
	if os.Geteuid() == 0 {
		if err := os.Chown(s.dir, nobody, nobody); err != nil {
			return err
		}
	}
	initdb := command(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", User, "--auth=trust", "-E", "UTF8",
		"--no-locale", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	args := []string{"-D", data, "-k", s.dir, "-c", "listen_addresses=", "-c", "max_connections=200",
		"-c", "logging_collector=off"}
	if !opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = command(context.Background(), filepath.Join(bin, "postgres"), args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	return s.wait(ctx)
}

// command runs name as nobody when this process is root.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// The server stops when this process dies, however it dies: no server outlives its test.
	cmd.SysProcAttr = procAttr(syscall.SIGINT)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobody, Gid: nobody}
	}
	return cmd
}

// wait waits until the server accepts connections.
func (s *Server) wait(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.exited:
			b, _ := os.ReadFile(s.log)
			return fmt.Errorf("postgres exited: %s", strings.TrimSpace(string(b)))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within 30 s: %v", err)
		}
	}
}

// URL returns the URL of database db on the server (the socket's directory as host).
func (s *Server) URL(db string) string {
	return "postgres://" + User + "@/" + url.PathEscape(db) + "?host=" + url.QueryEscape(s.dir) + "&sslmode=disable"
}

// Dir returns the directory that holds the server's socket and data.
func (s *Server) Dir() string { return s.dir }

// CreateDB creates a new, empty database and returns its URL.
func (s *Server) CreateDB(ctx context.Context) (string, error) {
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("db%d", s.n)
	s.mu.Unlock()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// Stop stops the server (a fast shutdown) and removes its directory if Start made it.
func (s *Server) Stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.ownsDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// shared is the server of this test process, started by the first DB.
var shared struct {
	sync.Mutex
	srv *Server
	err error
}

// DB returns the URL of a new, empty database on this test process's server, starting the
// server on first use. Without PostgreSQL the test is skipped, or fails under
// PACSWATCH_REQUIRE_PEERS=1; a PostgreSQL that is installed and does not start fails it.
func DB(t testing.TB) string {
	t.Helper()
	srv := Shared(t)
	u, err := srv.CreateDB(context.Background())
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return u
}

// Shared returns this test process's server, starting it on first use (see DB).
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if _, err := Bin(); err != nil {
		if os.Getenv("PACSWATCH_REQUIRE_PEERS") == "1" {
			t.Fatalf("pgtest: %v (PACSWATCH_REQUIRE_PEERS=1)", err)
		}
		t.Skipf("pgtest: %v", err)
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = Start(context.Background(), Options{})
	}
	if shared.err != nil { // installed, but it does not start: a failure, never a skip
		t.Fatalf("pgtest: start PostgreSQL: %v", shared.err)
	}
	return shared.srv
}

// Main runs a package's tests and stops the server they started: a test package that uses DB
// declares func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	shared.Unlock()
	os.Exit(code)
}
