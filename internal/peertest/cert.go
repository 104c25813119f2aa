package peertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a self-signed certificate for 127.0.0.1, made for one test: in memory and as PEM files
// (what Orthanc's DicomTlsCertificate and DicomTlsPrivateKey take).
type Cert struct {
	TLS               tls.Certificate
	CertFile, KeyFile string
	Subject           string    // "CN=pacswatch-test-pacs,O=Test Archive"
	NotAfter          time.Time // when it expires (two days from now for SelfSigned), to the second
}

// SelfSigned makes a self-signed ECDSA certificate for 127.0.0.1 valid for server and client
// authentication, and writes it and its key to PEM files in the test's temporary directory.
// It expires in two days.
func SelfSigned(t testing.TB) Cert {
	t.Helper()
	return SelfSignedFor(t, 48*time.Hour)
}

// SelfSignedFor is SelfSigned with a certificate valid for d from now.
func SelfSignedFor(t testing.TB, d time.Duration) Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := Cert{NotAfter: time.Now().Add(d).UTC().Truncate(time.Second)}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "pacswatch-test-pacs", Organization: []string{"Test Archive"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              c.NotAfter,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	c.Subject = tmpl.Subject.String()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	dir := t.TempDir()
	c.CertFile, c.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(c.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if c.TLS, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}
