package scp_test

import (
	"crypto/tls"
	"github.com/pacswatch/pacswatch/internal/peertest"
	"net"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/scp"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// selfSigned returns a self-signed server certificate for 127.0.0.1 (peertest.SelfSigned).
func selfSigned(t *testing.T) tls.Certificate { return peertest.SelfSigned(t).TLS }

func TestTLS(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{
		TLS:  &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}},
		Tree: scp.NewVirtualTree(5, 200_000),
	})
	t.Run("tls client", func(t *testing.T) {
		raw, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
		a, err := ul.NewClient(testCtx(t), conn, ul.Config{CalledAE: "DICOMTEST", Contexts: dimse.ProposeQR()})
		if err != nil {
			t.Fatalf("associate over TLS: %v", err)
		}
		defer a.Close()
		if status, err := dimse.Echo(testCtx(t), a); err != nil || status != dimse.Success {
			t.Fatalf("C-ECHO over TLS = %v, %v", status, err)
		}
		n := 0
		status, err := dimse.Find(testCtx(t), a, dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID), dimse.FindOptions{},
			func(dicom.Dataset) error {
				if n++; n == 50 {
					return dimse.ErrStop
				}
				return nil
			})
		if err != nil || status != dimse.Cancel || n != 50 {
			t.Fatalf("cancelled C-FIND over TLS = %d responses, %v, %v; want 50, %v", n, status, err, dimse.Cancel)
		}
		if err := a.Release(testCtx(t)); err != nil {
			t.Errorf("release: %v", err)
		}
		if state := conn.ConnectionState(); !state.HandshakeComplete {
			t.Error("no TLS handshake")
		}
	})
	t.Run("plain client", func(t *testing.T) {
		if _, err := dial(t, s, nil); err == nil {
			t.Error("plain association with a TLS server succeeded")
		}
	})
	waitIdle(t, s)
	if got := s.Stats().Associations; got != 1 {
		t.Errorf("Stats.Associations = %d, want 1", got)
	}
}
