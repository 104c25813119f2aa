package dicomprobe

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

func TestFramer(t *testing.T) {
	stream := []byte{
		1, 0, 0, 0, 0, 3, 'a', 'b', 'c', // A-ASSOCIATE-RQ, 3 bytes
		4, 0, 0, 0, 0, 0, // P-DATA-TF, empty
		7, 0, 0, 0, 0, 4, 0, 0, 0, 0, // A-ABORT
	}
	for _, size := range []int{1, 2, 5, 7, len(stream)} {
		var f framer
		var got []string
		for b := stream; len(b) > 0; {
			n := min(size, len(b))
			f.feed(b[:n], func(t ul.Type, l uint32) { got = append(got, t.String()) })
			b = b[n:]
		}
		want := []string{ul.TypeAAssociateRQ.String(), ul.TypePDataTF.String(), ul.TypeAAbort.String()}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("pieces of %d: %v, want %v", size, got, want)
		}
	}
}

// TestTraceLogsEveryPDU: at -vv (LevelTrace) each PDU of a probe is a log line with its type and
// length, and nothing else from the wire; below that level nothing is wrapped.
func TestTraceLogsEveryPDU(t *testing.T) {
	s := dicomtest.Start(t, dicomtest.Config{Tree: dicomtest.NewTree(3, 2), ComputedCounts: true})
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: LevelTrace}))
	New(Config{Depth: DepthQuery, Timeout: 2 * time.Second, Logger: log}).Probe(context.Background(), target(t, s.Addr()))
	out := buf.String()
	for _, want := range []string{"dir=send type=A-ASSOCIATE-RQ", "dir=recv type=A-ASSOCIATE-AC", "dir=send type=P-DATA-TF", "dir=recv type=P-DATA-TF", "type=A-RELEASE-RQ"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAKE") {
		t.Errorf("trace carries patient data:\n%s", out)
	}
	quiet := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if _, wrapped := trace(nil, quiet).(*traceConn); wrapped {
		t.Error("trace wraps the connection below -vv")
	}
}
