package dimse_test

import (
	"context"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// BenchmarkEchoAssociation measures a whole short association against the
// in-process SCP on 127.0.0.1: TCP connect, A-ASSOCIATE, C-ECHO, A-RELEASE.
func BenchmarkEchoAssociation(b *testing.B) {
	srv := dicomtest.Start(b, dicomtest.Config{})
	ctx := context.Background()
	cfg := ul.Config{CalledAE: dicomtest.DefaultAETitle, Contexts: dimse.ProposeQR()}
	start := time.Now()
	for b.Loop() {
		a, err := ul.Dial(ctx, srv.Addr(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if st, err := dimse.Echo(ctx, a); err != nil || st != dimse.Success {
			b.Fatalf("C-ECHO: %v, %v", st, err)
		}
		if err := a.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "assoc/s")
}

// BenchmarkFindResponses measures one study-level C-FIND streaming 20,000
// pending responses, with the identifiers decoded through an allow-list.
func BenchmarkFindResponses(b *testing.B) {
	const studies = 20000
	srv := dicomtest.Start(b, dicomtest.Config{Tree: dicomtest.NewVirtualTree(1, studies)})
	ctx := context.Background()
	var q dicom.Dataset
	q.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	q.Set(dicom.NewString(dicom.StudyInstanceUID))
	q.Set(dicom.NewString(dicom.StudyDate))
	opt := dimse.FindOptions{Allow: dimse.AllowTags(dicom.StudyInstanceUID, dicom.StudyDate)}
	a, err := ul.Dial(ctx, srv.Addr(), ul.Config{CalledAE: dicomtest.DefaultAETitle, Contexts: dimse.ProposeQR()})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Release(ctx)
	responses := 0
	start := time.Now()
	for b.Loop() {
		n := 0
		st, err := dimse.Find(ctx, a, dimse.StudyRootFind, q, opt, func(dicom.Dataset) error { n++; return nil })
		if err != nil || st != dimse.Success || n != studies {
			b.Fatalf("C-FIND = %v, %v with %d matches, want %d", st, err, n, studies)
		}
		responses += n
	}
	b.ReportMetric(float64(responses)/time.Since(start).Seconds(), "responses/s")
}
