package guard

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/guard/syslog"
)

// collector is a syslog collector on loopback that keeps every byte it receives.
type collector struct {
	l  net.Listener
	mu sync.Mutex
	b  bytes.Buffer
	wg sync.WaitGroup
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{l: l}
	c.wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.wg.Go(func() {
				defer conn.Close()
				b, _ := io.ReadAll(conn)
				c.mu.Lock()
				c.b.Write(b)
				c.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() { l.Close(); c.wg.Wait() })
	return c
}

// messages splits the octet-counted stream into messages, failing on a bad frame.
func (c *collector) messages(t *testing.T) []string {
	t.Helper()
	c.mu.Lock()
	rest := c.b.String()
	c.mu.Unlock()
	var out []string
	for rest != "" {
		n, tail, ok := strings.Cut(rest, " ")
		size, err := strconv.Atoi(n)
		if !ok || err != nil || size > len(tail) {
			t.Fatalf("bad syslog frame at %q", rest[:min(len(rest), 40)])
		}
		out = append(out, tail[:size])
		rest = tail[size:]
	}
	return out
}

// TestAuditPrivacy: fake patients pass through the guard in C-FIND identifiers (asked for, and
// returned unasked by a chatty archive), in a query the client sends, in instances a C-GET
// brings back and in refused requests; none of their values is in the JSON Lines audit log or
// in the DICOM audit messages sent over syslog.
// It runs with the guard reading every PDU and with Splice.
func TestAuditPrivacy(t *testing.T) {
	for _, splice := range []bool{false, true} {
		t.Run(fmt.Sprintf("splice=%v", splice), func(t *testing.T) { auditPrivacy(t, splice) })
	}
}

func auditPrivacy(t *testing.T, splice bool) {
	tree := dicomtest.NewTree(11, 12)
	up := dicomtest.Start(t, dicomtest.Config{AETitle: "ARCHIVE", Tree: tree, Chatty: true, ComputedCounts: true})
	col := startCollector(t)
	w, err := syslog.New(syslog.Config{Addr: col.l.Addr().String(), AppName: "pacswatch", Hostname: "guard-host"})
	if err != nil {
		t.Fatal(err)
	}
	g := startGuard(t, up.Addr(), basePolicy, func(c *Config) {
		c.Events, c.Splice = SyslogEvents(w, "guard-test", up.Addr()), splice
	})
	ctx := context.Background()
	secrets := []string{"FAKE^SEARCHED", "FAKEPID-SEARCHED"}
	for _, st := range tree.Studies {
		secrets = append(secrets, st.PatientName, st.PatientID)
	}

	admin := mustDial(t, g.Addr, "ADMIN")
	q := studyQuery(dicom.NewString(dicom.PatientName, ""), dicom.NewString(dicom.PatientID, ""))
	if st, n := find(t, admin, q); st != dimse.Success || n != len(tree.Studies) {
		t.Fatalf("C-FIND = %v, %d", st, n)
	}
	q = studyQuery(dicom.NewString(dicom.PatientName, "FAKE^SEARCHED*"), dicom.NewString(dicom.PatientID, "FAKEPID-SEARCHED"))
	find(t, admin, q)
	admin.Release(ctx)

	reader := mustDial(t, g.Addr, "READER")
	if st, _ := find(t, reader, studyQuery(dicom.NewString(dicom.PatientName, "*"))); st != dimse.RefusedNotAuthorized {
		t.Errorf("universal C-FIND by READER = %v", st)
	}
	var pq dicom.Dataset
	pq.Set(dicom.NewString(dicom.QueryRetrieveLevel, "PATIENT"))
	pq.Set(dicom.NewString(dicom.PatientName, "FAKE^SEARCHED"))
	if st, _ := find(t, reader, pq); st != dimse.RefusedNotAuthorized {
		t.Errorf("PATIENT-level C-FIND by READER = %v", st)
	}
	sub, err := dimse.Get(ctx, reader, dimse.StudyRootGet, studyQuery(dicom.NewString(dicom.StudyInstanceUID, tree.Studies[0].UID)), nil)
	if err != nil || sub.Status != dimse.Success {
		t.Fatalf("C-GET = %+v, %v", sub, err)
	}
	reader.Release(ctx)
	g.Audit.wait(t, func(r Record) bool { return r.Event == EventAssociationEnd && r.Calling == "READER" })
	w.Close()
	if w.Sent() == 0 || w.Dropped() != 0 {
		t.Fatalf("syslog: %d sent, %d dropped", w.Sent(), w.Dropped())
	}
	deadline := time.Now().Add(5 * time.Second)
	var msgs []string
	for time.Now().Before(deadline) {
		if msgs = col.messages(t); int64(len(msgs)) == w.Sent() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	kinds := map[string]bool{}
	for _, m := range msgs {
		if !strings.HasPrefix(m, "<85>1 ") && !strings.HasPrefix(m, "<84>1 ") {
			t.Errorf("syslog message header: %q", m[:min(len(m), 60)])
		}
		i := strings.Index(m, "<?xml")
		if i < 0 || !strings.Contains(m[:i], " guard-host pacswatch - DICOM+RFC3881 - \xEF\xBB\xBF") {
			t.Fatalf("syslog message without its RFC 5424 header or XML: %q", m)
		}
		var am auditMessage
		if err := xml.Unmarshal([]byte(m[i:]), &am); err != nil {
			t.Fatalf("DICOM audit message does not parse: %v\n%s", err, m[i:])
		}
		kinds[am.Event.ID.Code] = true
	}
	for _, want := range []string{"110112", "110113", "110104"} {
		if !kinds[want] {
			t.Errorf("no DICOM audit message with EventID %s among %d", want, len(msgs))
		}
	}
	all := g.Audit.String() + strings.Join(msgs, "\n")
	assertNoSecrets(t, all, secrets)
}
