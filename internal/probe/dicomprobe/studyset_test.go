package dicomprobe

import (
	"context"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
)

// TestStudySet: two archives that hold the same studies have the same study-set digest, under
// one secret, whatever they answer with (computed counts or not); another archive, or another
// secret, gives another digest; without a secret there is none.
func TestStudySet(t *testing.T) {
	ctx := context.Background()
	secret := make([]byte, 32)
	digest := func(cfg dicomtest.Config, secret []byte) string {
		t.Helper()
		srv := dicomtest.Start(t, cfg)
		p := New(Config{Depth: DepthQuery, Timeout: 5 * time.Second, Secret: secret})
		r := p.Probe(ctx, target(t, srv.Addr()))
		if r.Exposure == nil || r.Exposure.Studies == 0 {
			t.Fatalf("no studies counted: %+v", r)
		}
		return r.Exposure.StudySet
	}
	a := digest(dicomtest.Config{Tree: dicomtest.NewTree(5, 30), ComputedCounts: true}, secret)
	b := digest(dicomtest.Config{Tree: dicomtest.NewTree(5, 30)}, secret)
	c := digest(dicomtest.Config{Tree: dicomtest.NewTree(6, 30), ComputedCounts: true}, secret)
	other := append([]byte{1}, secret[1:]...)
	d := digest(dicomtest.Config{Tree: dicomtest.NewTree(5, 30), ComputedCounts: true}, other)
	if len(a) != 16 || a != b {
		t.Errorf("same studies: digests %q and %q, want equal and 16 hex digits", a, b)
	}
	if c == a || d == a {
		t.Errorf("another archive gave %q, another secret %q; want both unlike %q", c, d, a)
	}
	if got := digest(dicomtest.Config{Tree: dicomtest.NewTree(5, 30)}, nil); got != "" {
		t.Errorf("without a secret: digest %q, want none", got)
	}
	if got := (*counter)(nil).studySet(); got != "" {
		t.Errorf("no counter: %q", got)
	}
}
