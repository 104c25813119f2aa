package honeypot_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/honeypot"
	"github.com/pacswatch/pacswatch/internal/probe"
)

func host(ip string, port uint16, set string, studies int64) probe.Result {
	r := accepted("2.25.1", "REAL_1", 16384, studies, map[string]int64{"MR": studies})
	r.IP, r.Port, r.ScanID = netip.MustParseAddr(ip), port, "s"
	r.Exposure.StudySet = set
	return r
}

func tlsHost(ip, subject string) probe.Result {
	r := host(ip, 2762, "", 0)
	r.Exposure.Level = probe.LevelEcho
	r.DICOM.TLS = true
	r.DICOM.TLSCert = &probe.TLSCert{Subject: subject, Issuer: subject, NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), SelfSigned: true}
	return r
}

func flagged(t *testing.T, cfg honeypot.Config, rs ...probe.Result) map[string]string {
	t.Helper()
	d := honeypot.NewDetector(cfg)
	for i := range rs {
		d.Add(&rs[i])
	}
	out := map[string]string{}
	for _, f := range d.Flagged() {
		if f.Caveat.Kind != probe.CaveatHoneypot || f.ScanID != "s" {
			t.Errorf("%s: caveat %+v of scan %q", f.Addr, f.Caveat, f.ScanID)
		}
		out[f.Addr.String()] += f.Caveat.Reason
	}
	return out
}

// TestStudyClusters: three addresses serving one study set with the same counts are a cluster;
// two are not, nor two ports of one address, nor the same digest with other counts.
func TestStudyClusters(t *testing.T) {
	got := flagged(t, honeypot.Config{},
		host("198.51.100.1", 104, "aaaa", 10), host("198.51.100.2", 104, "aaaa", 10), host("198.51.100.3", 11112, "aaaa", 10),
		host("198.51.100.4", 104, "bbbb", 7), host("198.51.100.5", 104, "bbbb", 7), host("198.51.100.5", 4242, "bbbb", 7),
		host("198.51.100.6", 104, "cccc", 5), host("198.51.100.7", 104, "cccc", 5), host("198.51.100.8", 104, "cccc", 6),
		host("198.51.100.9", 104, "", 10), host("198.51.100.10", 104, "", 10), host("198.51.100.11", 104, "", 10),
	)
	want := "one of 3 hosts serving the same 10 studies and 10 images"
	for _, a := range []string{"198.51.100.1:104", "198.51.100.2:104", "198.51.100.3:11112"} {
		if !strings.Contains(got[a], want) {
			t.Errorf("%s: %q, want %q", a, got[a], want)
		}
	}
	if len(got) != 3 {
		t.Errorf("flagged %v, want only the three hosts of set aaaa", got)
	}
	// A threshold of 2 takes the two addresses of set bbbb too (both ports of .5).
	if got := flagged(t, honeypot.Config{MinStudyCluster: 2}, host("198.51.100.4", 104, "bbbb", 7),
		host("198.51.100.5", 104, "bbbb", 7), host("198.51.100.5", 4242, "bbbb", 7)); len(got) != 3 {
		t.Errorf("threshold 2: flagged %v, want three ports", got)
	}
}

// TestCertClusters: five addresses with one identity and one TLS certificate are a cluster;
// four are not, nor five with certificates of their own.
func TestCertClusters(t *testing.T) {
	var rs []probe.Result
	for i := range 5 {
		rs = append(rs, tlsHost(fmt.Sprintf("203.0.113.%d", i+1), "CN=pacs"))
		rs = append(rs, tlsHost(fmt.Sprintf("203.0.113.%d", i+11), fmt.Sprintf("CN=site%d", i)))
	}
	for i := range 4 {
		rs = append(rs, tlsHost(fmt.Sprintf("203.0.113.%d", i+21), "CN=four"))
	}
	got := flagged(t, honeypot.Config{}, rs...)
	if len(got) != 5 {
		t.Errorf("flagged %v, want the five hosts sharing CN=pacs", got)
	}
	if r := got["203.0.113.1:2762"]; !strings.Contains(r, "one of 5 hosts with the same identity (2.25.1 REAL_1) and TLS certificate") {
		t.Errorf("reason %q", r)
	}
}
