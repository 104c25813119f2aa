package dicomprobe

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// associated runs a session's Connect and Associate, then Close, as an audit does before
// ProposeStorage.
func associated(t *testing.T, p *Prober, addr string) *Session {
	t.Helper()
	ctx := context.Background()
	s := p.NewSession(target(t, addr))
	if s.Connect(ctx) {
		s.Associate(ctx)
	}
	if s.ProposeStorage(ctx) {
		t.Error("ProposeStorage went on while the session's association was up")
	}
	s.Close(ctx)
	return s
}

// TestProposeStorage: a server that accepts storage contexts is found out on an association of
// its own, released, with no C-STORE sent; one that refuses them, or refuses the association,
// is not; nothing is proposed before the session's association ended.
func TestProposeStorage(t *testing.T) {
	ctx := context.Background()
	p := New(Config{Depth: DepthAssociate, Timeout: 2 * time.Second})
	for _, tc := range []struct {
		name  string
		cfg   dicomtest.Config
		store bool
	}{
		{"accepts", dicomtest.Config{}, true},
		{"refuses the contexts", dicomtest.Config{Refused: dicomtest.Services{Store: true}, Refusal: dicomtest.RefuseContext}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dicomtest.Start(t, tc.cfg)
			s := associated(t, p, srv.Addr())
			before := srv.Stats()
			if got := s.ProposeStorage(ctx); got != tc.store || s.Result().DICOM.Services.Store != tc.store {
				t.Errorf("ProposeStorage = %v, Services.Store = %v; want %v", got, s.Result().DICOM.Services.Store, tc.store)
			}
			after := srv.Stats()
			if after.Associations != before.Associations+1 || after.Store != 0 || after.Aborted != before.Aborted {
				t.Errorf("stats %+v after %+v: want one more association, released, and no C-STORE", after, before)
			}
		})
	}
	t.Run("association refused", func(t *testing.T) {
		srv := dicomtest.Start(t, dicomtest.Config{AETitle: "ONLYME", CheckCalled: true})
		s := associated(t, New(Config{Depth: DepthAssociate, Timeout: 2 * time.Second, MaxAETries: 1}), srv.Addr())
		conns := srv.Stats().Connections
		if s.ProposeStorage(ctx) || srv.Stats().Connections != conns {
			t.Errorf("ProposeStorage after a refused association: connections %d → %d", conns, srv.Stats().Connections)
		}
	})
}

// TestClientCertRequired: a DICOM TLS peer that wants a client certificate is DICOM, protected,
// with its TLS facts kept, whether the refusal's alert reached us or a reset overtook it: Go's
// own TLS server (TLS 1.3) and Orthanc with DicomTlsRemoteCertificateRequired.
func TestClientCertRequired(t *testing.T) {
	cert := peertest.SelfSigned(t)
	check := func(t *testing.T, addr string) {
		t.Helper()
		for range 3 { // the alert and the reset race: try a few times
			r := New(Config{Depth: DepthEcho, Timeout: 3 * time.Second}).Probe(context.Background(), target(t, addr))
			if r.DICOM == nil || !r.DICOM.TLS || r.DICOM.TLSCert == nil || r.Level() != probe.LevelProtected ||
				r.Error != TextClientCertRequired || r.DICOM.Association != probe.AssociationNone {
				t.Fatalf("got level %v error %q dicom %+v; want protected DICOM TLS refused for want of a certificate", r.Level(), r.Error, r.DICOM)
			}
		}
	}
	t.Run("in-process", func(t *testing.T) {
		srv := dicomtest.Start(t, dicomtest.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert.TLS}, ClientAuth: tls.RequireAnyClientCert}})
		check(t, srv.Addr())
	})
	t.Run("Orthanc", func(t *testing.T) {
		o := peertest.StartOrthanc(t, peertest.OrthancConfig{TLS: &peertest.OrthancTLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, TrustedFile: cert.CertFile, RequireClientCert: true}})
		check(t, net.JoinHostPort("127.0.0.1", itoa(o.DICOMPort)))
	})
	t.Run("not asked", func(t *testing.T) {
		// A TLS peer that closes after the handshake without asking for a certificate is not
		// called DICOM.
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		r := New(Config{Depth: DepthEcho, Timeout: 2 * time.Second}).Probe(context.Background(), target(t, l.Addr().String()))
		if r.Error == TextClientCertRequired || r.Level() != probe.LevelNotDICOM {
			t.Errorf("level %v error %q, want not-dicom", r.Level(), r.Error)
		}
	})
}
