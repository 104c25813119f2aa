package dicomprobe

import (
	"context"
	"crypto/tls"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// selfSigned makes a self-signed certificate for 127.0.0.1 and its PEM files (peertest.SelfSigned).
func selfSigned(t *testing.T) (cert tls.Certificate, certFile, keyFile string, notAfter time.Time) {
	c := peertest.SelfSigned(t)
	return c.TLS, c.CertFile, c.KeyFile, c.NotAfter
}

func target(t *testing.T, addr string) targets.Target {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return targets.Target{Addr: ap.Addr(), Port: ap.Port()}
}

func checkTLS(t *testing.T, r probe.Result, notAfter time.Time) {
	t.Helper()
	if r.DICOM == nil || !r.DICOM.TLS || r.DICOM.TLSCert == nil {
		t.Fatalf("want a TLS association, got %+v", r.DICOM)
	}
	c := r.DICOM.TLSCert
	if !strings.Contains(c.Subject, "pacswatch-test-pacs") || c.Subject != c.Issuer || !c.SelfSigned ||
		!c.NotAfter.Equal(notAfter) || !strings.HasPrefix(c.Version, "TLS 1.") {
		t.Errorf("certificate facts %+v, want the test's self-signed certificate expiring %v", c, notAfter)
	}
	if r.DICOM.Association != probe.AssociationAccepted || !r.DICOM.Services.Echo {
		t.Errorf("over TLS: association %v echo %v, want accepted and echoed", r.DICOM.Association, r.DICOM.Services.Echo)
	}
}

func TestTLSInProcess(t *testing.T) {
	cert, _, _, notAfter := selfSigned(t)
	s := dicomtest.Start(t, dicomtest.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	for _, tc := range []struct {
		mode TLSMode
		tls  bool
	}{{TLSAuto, true}, {TLSOn, true}, {TLSOff, false}} {
		r := New(Config{Depth: DepthEcho, TLS: tc.mode, Timeout: 2 * time.Second}).Probe(context.Background(), target(t, s.Addr()))
		if tc.tls {
			checkTLS(t, r, notAfter)
			continue
		}
		if r.DICOM != nil || r.Level() != probe.LevelNotDICOM {
			t.Errorf("--tls off against a TLS-only server: level %v dicom %+v, want not-dicom", r.Level(), r.DICOM)
		}
	}
	// A plain server under --tls on: not reachable as DICOM TLS.
	plain := dicomtest.Start(t, dicomtest.Config{})
	r := New(Config{Depth: DepthEcho, TLS: TLSOn, Timeout: 2 * time.Second}).Probe(context.Background(), target(t, plain.Addr()))
	if r.DICOM != nil || r.Error != "tls handshake failed" {
		t.Errorf("--tls on against a plain server: %+v error %q", r.DICOM, r.Error)
	}
	// Auto against a plain server: plain DICOM, no TLS.
	r = New(Config{Depth: DepthEcho, Timeout: 2 * time.Second}).Probe(context.Background(), target(t, plain.Addr()))
	if r.DICOM == nil || r.DICOM.TLS || r.DICOM.Association != probe.AssociationAccepted {
		t.Errorf("auto against a plain server: %+v", r.DICOM)
	}
}

func TestTLSOrthanc(t *testing.T) {
	_, certFile, keyFile, notAfter := selfSigned(t)
	o := peertest.StartOrthanc(t, peertest.OrthancConfig{TLS: &peertest.OrthancTLS{CertFile: certFile, KeyFile: keyFile, TrustedFile: certFile}})
	addr := net.JoinHostPort("127.0.0.1", itoa(o.DICOMPort))
	r := New(Config{Depth: DepthEcho, Timeout: 3 * time.Second}).Probe(context.Background(), target(t, addr))
	checkTLS(t, r, notAfter)
	r = New(Config{Depth: DepthEcho, TLS: TLSOff, Timeout: 3 * time.Second}).Probe(context.Background(), target(t, addr))
	if r.DICOM != nil && r.DICOM.Association == probe.AssociationAccepted {
		t.Errorf("--tls off reached Orthanc's TLS port as plain DICOM: %+v", r.DICOM)
	}
	if r.Level() > probe.LevelProtected {
		t.Errorf("--tls off: level %v, want not-dicom or protected", r.Level())
	}
	t.Logf("--tls off against Orthanc's TLS port: level %v, error %q", r.Level(), r.Error)
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }
