package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
)

// syncBuffer is an audit log the test reads while the guard writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records decodes the audit log, failing the test on a line that is not a Record.
func (s *syncBuffer) records(t testing.TB) []Record {
	t.Helper()
	var out []Record
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if line == "" {
			continue
		}
		var r Record
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// waitRecords waits until the audit log holds a record for which match is true.
func (s *syncBuffer) wait(t testing.TB, match func(Record) bool) Record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range s.records(t) {
			if match(r) {
				return r
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no matching audit record in:\n%s", s.String())
	return Record{}
}

// testGuard is a guard on a loopback port in front of upstream.
type testGuard struct {
	*Guard
	Addr  string
	Audit *syncBuffer
}

func startGuard(t testing.TB, upstream, policyYAML string, opts ...func(*Config)) *testGuard {
	t.Helper()
	p, err := policy.Parse([]byte(policyYAML))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	audit := &syncBuffer{}
	cfg := Config{Upstream: upstream, Audit: audit}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := New(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(context.Background(), l) }()
	t.Cleanup(func() {
		g.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testGuard{Guard: g, Addr: l.Addr().String(), Audit: audit}
}

// upstream starts a test SCP holding n synthetic studies, open to everyone.
func upstream(t testing.TB, n int, moveTo map[string]string) *dicomtest.Server {
	t.Helper()
	return dicomtest.Start(t, dicomtest.Config{AETitle: "ARCHIVE", Tree: dicomtest.NewTree(7, n), ComputedCounts: true, MoveDestinations: moveTo})
}

func dial(t testing.TB, addr, calling string) (*ul.Assoc, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	contexts, roles := dimse.ProposeGet()
	return ul.Dial(ctx, addr, ul.Config{CalledAE: "ARCHIVE", CallingAE: calling, Contexts: contexts, Roles: roles})
}

func ulDial(ctx context.Context, addr, called, calling string, contexts []ul.ContextProposal) (*ul.Assoc, error) {
	return ul.Dial(ctx, addr, ul.Config{CalledAE: called, CallingAE: calling, Contexts: contexts})
}

func mustDial(t testing.TB, addr, calling string) *ul.Assoc {
	t.Helper()
	a, err := dial(t, addr, calling)
	if err != nil {
		t.Fatalf("associate as %s: %v", calling, err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func studyQuery(keys ...dicom.Element) dicom.Dataset {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	ds.Set(dicom.NewString(dicom.StudyInstanceUID, ""))
	for _, k := range keys {
		ds.Set(k)
	}
	return ds
}

// find runs a Study Root C-FIND and counts the matches.
func find(t testing.TB, a *ul.Assoc, q dicom.Dataset) (dimse.Status, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	st, err := dimse.Find(ctx, a, dimse.StudyRootFind, q, dimse.FindOptions{}, func(dicom.Dataset) error { n++; return nil })
	if err != nil {
		t.Fatalf("C-FIND: %v", err)
	}
	return st, n
}

func rejected(err error) (ul.AAssociateRJ, bool) {
	var rj *ul.RejectedError
	if errors.As(err, &rj) {
		return rj.RJ, true
	}
	return ul.AAssociateRJ{}, false
}

const basePolicy = `
peers:
  - name: reader
    calling_ae: [READER]
    source: 127.0.0.0/8
    services: [echo, find, get, move]
    query_levels: [STUDY, SERIES]
    move_destinations: [DEST]
  - name: admin
    calling_ae: [ADMIN]
    source: 127.0.0.1
    services: [echo, find, store]
    query_levels: [PATIENT, STUDY, SERIES, IMAGE]
    universal_find: true
  - name: elsewhere
    calling_ae: [FARAWAY]
    source: 192.0.2.0/24
    services: [echo]
`
