package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"time"
)

// Truth is the ground truth of a fleet: what a perfect scanner reports for each host:port that
// listens. Every other address:port of CIDR × Ports is closed.
type Truth struct {
	CIDR       netip.Prefix `json:"cidr"`
	Ports      []uint16     `json:"ports"`
	Seed       uint64       `json:"seed"`
	MaxAETries int          `json:"max_ae_tries"` // the AE guesses per target the truth assumes
	Hosts      []Host       `json:"hosts"`
}

// maxTruth bounds a truth file ReadTruth reads.
const maxTruth = 256 << 20

// WriteJSON writes t as indented JSON.
func (t Truth) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(t); err != nil {
		return fmt.Errorf("sim: write truth: %w", err)
	}
	return nil
}

// ReadTruth reads a truth file written by WriteJSON.
func ReadTruth(r io.Reader) (Truth, error) {
	var t Truth
	dec := json.NewDecoder(io.LimitReader(r, maxTruth))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Truth{}, fmt.Errorf("sim: read truth: %w", err)
	}
	seen := make(map[netip.AddrPort]bool, len(t.Hosts))
	for _, h := range t.Hosts {
		if !h.Addr.IsValid() {
			return Truth{}, fmt.Errorf("sim: read truth: a host without an address")
		}
		if seen[h.Addr] {
			return Truth{}, fmt.Errorf("sim: read truth: %s listed twice", h.Addr)
		}
		seen[h.Addr] = true
	}
	return t, nil
}

// selfSigned returns the TLS configuration of a DICOM TLS host: a new P-256 key and a
// self-signed certificate for host valid for a year from now, as a lab's archive would have.
// Each host has its own: a certificate shared by many hosts is a honeypot farm's sign.
func selfSigned(now time.Time, host string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sim: tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("sim: tls serial: %w", err)
	}
	name := pkix.Name{CommonName: "pacswatch sim PACS " + host, Organization: []string{"pacswatch sim"}}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      name,
		Issuer:       name,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sim: tls certificate: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, nil
}
