package dicomprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// TextClientCertRequired is Result.Error for a DICOM TLS peer that completed the TLS handshake
// and then refused us for presenting no client certificate (PS3.15 Annex B.1 lets a node admit
// only peers with trusted certificates): the record keeps its TLS facts, at level protected.
const TextClientCertRequired = "tls: the peer requires a client certificate"

// refusedForCert reports whether err, which ended an association attempt over a completed TLS
// handshake before any DICOM answer, is the peer refusing us for want of a client certificate.
// TLS 1.3 sends that refusal (an alert) after the handshake, and the peer's close races with it:
// our A-ASSOCIATE-RQ may meet a reset that drops the alert. Then one more handshake, which sends
// nothing after it, tells whether the peer asks for a certificate (a CertificateRequest).
func (s *Session) refusedForCert(ctx context.Context, err error) bool {
	if certAlert(err) {
		return true
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false
	}
	conn, err := s.p.dial(ctx, s.t.String())
	if err != nil {
		return false
	}
	defer conn.Close()
	asked := false
	tc := tls.Client(conn, &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // only asks whether the peer wants a certificate
		MinVersion:         tls.VersionTLS10,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return &tls.Certificate{}, nil // none: the peer refuses, and we learned what we came for
		},
	})
	hctx, cancel := context.WithTimeout(ctx, s.p.cfg.Timeout)
	defer cancel()
	_ = tc.HandshakeContext(hctx)
	return asked
}

// certAlert reports whether err is the TLS alert a peer sends when it wants a client
// certificate we did not give: certificate_required (RFC 8446 §6.2), bad_certificate or
// handshake_failure.
func certAlert(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	msg := op.Err.Error()
	return strings.HasSuffix(msg, "certificate required") || strings.HasSuffix(msg, "bad certificate") ||
		strings.HasSuffix(msg, "handshake failure")
}
