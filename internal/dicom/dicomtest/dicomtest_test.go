package dicomtest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// TestStart: Start's server answers at once and is gone when its test ends.
func TestStart(t *testing.T) {
	var addr string
	t.Run("serve", func(t *testing.T) {
		s := dicomtest.Start(t, dicomtest.Config{AETitle: "PACS", CheckCalled: true})
		addr = s.Addr()
		if addr == "" {
			t.Fatal("Addr is empty right after Start")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a, err := ul.Dial(ctx, addr, ul.Config{CalledAE: "PACS", Contexts: dimse.ProposeQR()})
		if err != nil {
			t.Fatal(err)
		}
		if st, err := dimse.Echo(ctx, a); err != nil || st != dimse.Success {
			t.Errorf("C-ECHO: status %v, %v; want success", st, err)
		}
		if err := a.Release(ctx); err != nil {
			t.Errorf("release: %v", err)
		}
		if got := s.Stats().Echo; got != 1 {
			t.Errorf("Stats().Echo = %d, want 1", got)
		}
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after its test ended", addr)
	}
}
