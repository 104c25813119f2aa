package peertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// QRAE is one application entity of a dcmqrscp archive.
type QRAE struct {
	Title string
	Peers []string // AE titles allowed to talk to it (must be in Hosts); empty = ANY
}

// QRHost is a HostTable entry: a peer AE on 127.0.0.1.
type QRHost struct {
	Name, AET string
	Port      int
}

// Dcmqrscp is a running dcmtk dcmqrscp archive (one process; a child per association).
type Dcmqrscp struct {
	Port int
	dir  string
	run  restartable // the process, for Restart
}

// StartDcmqrscp starts dcmqrscp with the given AEs on a free port. dcmqrscp keeps at most 500
// studies per AE and silently deletes older ones beyond that (peers.md).
func StartDcmqrscp(t testing.TB, aes []QRAE, hosts []QRHost) *Dcmqrscp {
	t.Helper()
	bin := Require(t, "dcmqrscp")[0]
	dir := t.TempDir()
	q := &Dcmqrscp{Port: FreePort(t), dir: dir}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "NetworkTCPPort = %d\nMaxPDUSize = 16384\nMaxAssociations = 32\n\nHostTable BEGIN\n", q.Port)
	for _, h := range hosts {
		fmt.Fprintf(&cfg, "%s = (%s, 127.0.0.1, %d)\n", h.Name, h.AET, h.Port)
	}
	cfg.WriteString("HostTable END\n\nVendorTable BEGIN\nVendorTable END\n\nAETable BEGIN\n")
	for _, ae := range aes {
		store := filepath.Join(dir, "db", ae.Title)
		if err := os.MkdirAll(store, 0o755); err != nil {
			t.Fatal(err)
		}
		peers := "ANY"
		if len(ae.Peers) > 0 {
			peers = strings.Join(ae.Peers, ", ")
		}
		fmt.Fprintf(&cfg, "%s %s RW (500, 64mb) %s\n", ae.Title, store, peers)
	}
	cfg.WriteString("AETable END\n")
	path := filepath.Join(dir, "dcmqrscp.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// -dhl: no reverse lookup, else 127.0.0.1 host entries never match (peers.md).
	q.run = restartable{dir: dir, config: path, argv: []string{bin, "-dhl", "-c", path}, ports: []int{q.Port}, ready: dcmqrscpReady(q.Port)}
	q.run.start(t)
	return q
}

// Store loads the corpus into the AE with storescu (one association), as callingAE.
func (q *Dcmqrscp) Store(t testing.TB, calledAE, callingAE string, c Corpus) {
	t.Helper()
	storeFiles(t, q.Port, calledAE, callingAE, c.WriteFiles(t, t.TempDir()))
}

func storeFiles(t testing.TB, port int, calledAE, callingAE string, files []string) {
	t.Helper()
	bin := Require(t, "storescu")[0]
	// storescu takes many files per association; chunk to keep argv small.
	for len(files) > 0 {
		n := min(len(files), 400)
		argv := append([]string{bin, "-aet", callingAE, "-aec", calledAE, "127.0.0.1", fmt.Sprint(port)}, files[:n]...)
		if out, err := run(context.Background(), argv...); err != nil {
			t.Fatalf("storescu to %s: %v\n%s", calledAE, err, tail([]byte(out), 2048))
		}
		files = files[n:]
	}
}

// Storescp is a running dcmtk storescp: a C-ECHO and C-STORE SCP that keeps what it receives
// in Dir (a C-MOVE destination for tests).
type Storescp struct {
	Port int
	AET  string
	Dir  string
}

// StartStorescp starts storescp with AE title aet on a free port.
func StartStorescp(t testing.TB, aet string) *Storescp {
	t.Helper()
	bin := Require(t, "storescp")[0]
	dir := t.TempDir()
	s := &Storescp{Port: FreePort(t), AET: aet, Dir: filepath.Join(dir, "in")}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, "storescp.log", bin, "-aet", aet, "-od", s.Dir, "--promiscuous", fmt.Sprint(s.Port))
	p.waitPort(t, s.Port)
	return s
}

// Received returns the number of files storescp has written.
func (s *Storescp) Received(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
