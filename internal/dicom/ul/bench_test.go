package ul_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// BenchmarkAssociateRelease measures whole associations over loopback TCP:
// dial, A-ASSOCIATE-RQ/AC, A-RELEASE-RQ/RP, close.
func BenchmarkAssociateRelease(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		ln.Close()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
				defer scancel()
				a, err := ul.Accept(sctx, conn, ul.ServerConfig{})
				if err != nil {
					return
				}
				if _, _, err := a.ReadCommand(sctx); errors.Is(err, ul.ErrReleaseRequested) {
					a.ReplyRelease(sctx)
				}
				a.Close()
			}()
		}
	}()
	addr := ln.Addr().String()
	cfg := verificationConfig()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		a, err := ul.Dial(cctx, addr, cfg)
		if err != nil {
			ccancel()
			b.Fatal(err)
		}
		if err := a.Release(cctx); err != nil {
			ccancel()
			b.Fatal(err)
		}
		ccancel()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "assoc/s")
}
