package guard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
	"github.com/pacswatch/pacswatch/internal/peertest"
)

// TestTLSBothWays: a TLS listener that verifies client certificates when given, a peer bound to
// one, and a TLS upstream.
func TestTLSBothWays(t *testing.T) {
	serverCert, clientCert := peertest.SelfSigned(t), peertest.SelfSigned(t)
	pool := x509.NewCertPool()
	pool.AddCert(serverCert.TLS.Leaf)
	pool.AddCert(clientCert.TLS.Leaf)
	up := dicomtest.Start(t, dicomtest.Config{AETitle: "ARCHIVE", TLS: &tls.Config{Certificates: []tls.Certificate{serverCert.TLS}, MinVersion: tls.VersionTLS12}})
	p, err := policy.Parse([]byte(`
peers:
  - name: bound
    calling_ae: [WS]
    source: 127.0.0.1
    client_cert: {common_name: pacswatch-test-pacs}
    services: [echo]
  - name: tls-only
    calling_ae: [LAPTOP]
    source: 127.0.0.1
    require_tls: true
    services: [echo]
`))
	if err != nil {
		t.Fatal(err)
	}
	audit := &syncBuffer{}
	g, err := New(Config{Upstream: up.Addr(), Audit: audit, UpstreamTLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}, p)
	if err != nil {
		t.Fatal(err)
	}
	plainL, _ := net.Listen("tcp", "127.0.0.1:0")
	tlsL, _ := net.Listen("tcp", "127.0.0.1:0")
	srvTLS := &tls.Config{Certificates: []tls.Certificate{serverCert.TLS}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	go g.Serve(context.Background(), plainL)
	go g.Serve(context.Background(), tls.NewListener(tlsL, srvTLS))
	t.Cleanup(func() { g.Close() })

	echo := func(addr, calling string, cfg *tls.Config) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		if cfg != nil {
			c = tls.Client(c, cfg)
		}
		a, err := ul.NewClient(ctx, c, ul.Config{CalledAE: "ARCHIVE", CallingAE: calling, Contexts: dimse.ProposeQR()})
		if err != nil {
			return err
		}
		defer a.Close()
		if _, err := dimse.Echo(ctx, a); err != nil {
			return err
		}
		return a.Release(ctx)
	}
	withCert := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{clientCert.TLS}}
	noCert := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	old := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11}

	if err := echo(tlsL.Addr().String(), "WS", withCert); err != nil {
		t.Errorf("WS with its certificate: %v", err)
	}
	if err := echo(tlsL.Addr().String(), "WS", noCert); err == nil {
		t.Error("WS without a certificate admitted")
	}
	if err := echo(plainL.Addr().String(), "WS", nil); err == nil {
		t.Error("WS over plain TCP admitted")
	}
	if err := echo(tlsL.Addr().String(), "LAPTOP", noCert); err != nil {
		t.Errorf("LAPTOP over TLS: %v", err)
	}
	if _, ok := rejected(echo(plainL.Addr().String(), "LAPTOP", nil)); !ok {
		t.Error("LAPTOP over plain TCP not rejected")
	}
	if err := echo(tlsL.Addr().String(), "LAPTOP", old); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	if up.Stats().Echo != 2 {
		t.Errorf("upstream answered %d echoes over TLS, want 2", up.Stats().Echo)
	}
	rec := audit.wait(t, func(r Record) bool { return r.Event == EventAssociation && r.Peer == "bound" && r.Result == "accepted" })
	if !rec.TLS || rec.ClientCN != "pacswatch-test-pacs" {
		t.Errorf("bound's record = %+v", rec)
	}
	audit.wait(t, func(r Record) bool { return r.Event == EventConnection && r.Result == "tls-handshake-failed" })
}
