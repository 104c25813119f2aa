package dicomprobe

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// scriptedSCP answers every A-ASSOCIATE-RQ on a loopback listener with ac, and closes.
func scriptedSCP(t *testing.T, ac *ul.AAssociateAC) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	reply := ac.Append(nil)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := ul.ReadPDU(c, 1<<20); err == nil {
					c.Write(reply)
				}
			})
		}
	})
	return ln.Addr().String()
}

// TestLogsFiltered: a server-chosen 20 kB transfer syntax UID reaches neither the -v nor the -vv
// log (issue 10 item 14): what the logs show of it is its length.
func TestLogsFiltered(t *testing.T) {
	huge := strings.Repeat("1", 20000)
	addr := scriptedSCP(t, &ul.AAssociateAC{
		ProtocolVersion:      1,
		CalledAE:             "ANY-SCP",
		CallingAE:            "PACSWATCH",
		ApplicationContext:   ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextAC{{ID: 1, Result: ul.PCAcceptance, TransferSyntax: huge}},
		UserInfo:             ul.UserInfo{MaxLength: 16384, ImplementationClassUID: "1.2.3.4", ImplementationVersionName: "SCRIPTED"},
	})
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			opts := &slog.HandlerOptions{Level: LevelTrace}
			var h slog.Handler = slog.NewTextHandler(&buf, opts)
			if format == "json" {
				h = slog.NewJSONHandler(&buf, opts)
			}
			p := New(Config{Depth: DepthQuery, CalledAE: "ANY-SCP", TLS: TLSOff, Timeout: time.Second, Logger: slog.New(h)})
			r := p.Probe(context.Background(), target(t, addr))

			log := buf.String()
			if !strings.Contains(log, "invalid (20000 bytes)") {
				t.Errorf("log does not say what was filtered:\n%.2000s", log)
			}
			if strings.Contains(log, huge[:65]) {
				t.Errorf("log holds the server's transfer syntax:\n%.2000s", log)
			}
			for _, line := range strings.Split(log, "\n") {
				if len(line) > 1024 {
					t.Errorf("log line of %d bytes: %.200s...", len(line), line)
				}
			}
			if strings.Contains(r.Error, huge[:65]) || r.Error == "" {
				t.Errorf("result error %.200q: want the kind of failure only", r.Error)
			}
		})
	}
}
