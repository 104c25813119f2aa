package targets

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseFake(t *testing.T, specs []string, opt Options) *Space {
	t.Helper()
	if opt.Ports == nil {
		opt.Ports = []uint16{104}
	}
	opt.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("192.0.2.9")}, nil
	}
	s, err := Parse(context.Background(), specs, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDigest(t *testing.T) {
	base := parseFake(t, []string{"198.51.100.0/24", "pacs.example.org", "[2001:db8::1]:4242"}, Options{})
	same := parseFake(t, []string{"[2001:db8::1]:4242", "198.51.100.0-198.51.100.255", "pacs.example.org"}, Options{})
	if base.Digest() != same.Digest() {
		t.Errorf("same space, different digests")
	}
	if len(base.Digest()) != 64 {
		t.Errorf("digest %q: want 64 hex digits", base.Digest())
	}
	for name, other := range map[string]*Space{
		"one address excluded": parseFake(t, []string{"198.51.100.0/24", "pacs.example.org", "[2001:db8::1]:4242"}, Options{Exclude: []string{"198.51.100.7"}}),
		"another port":         parseFake(t, []string{"198.51.100.0/24", "pacs.example.org", "[2001:db8::1]:4242"}, Options{Ports: []uint16{105}}),
		"a smaller range":      parseFake(t, []string{"198.51.100.0/25", "pacs.example.org", "[2001:db8::1]:4242"}, Options{}),
		"a shifted range":      parseFake(t, []string{"198.51.101.0/24", "pacs.example.org", "[2001:db8::1]:4242"}, Options{}),
		"no pair":              parseFake(t, []string{"198.51.100.0/24", "pacs.example.org"}, Options{}),
	} {
		if other.Digest() == base.Digest() {
			t.Errorf("%s: digest unchanged", name)
		}
	}
}

func TestPublic(t *testing.T) {
	for _, tc := range []struct {
		specs []string
		want  bool
	}{
		{[]string{"127.0.0.0/8"}, false},
		{[]string{"10.0.0.0/8", "192.168.0.0/16", "127.0.0.1:104"}, false},
		{[]string{"198.18.0.0/15"}, false},
		{[]string{"0.0.0.0/0"}, true},
		{[]string{"10.0.0.1", "8.8.8.8:53"}, true},
		{[]string{"9.255.255.255-10.0.0.5"}, true}, // straddles into 10/8
		{[]string{"2001:db8::/96"}, false},
		{[]string{"2a00::1"}, true},
	} {
		if got := parseFake(t, tc.specs, Options{}).Public(); got != tc.want {
			t.Errorf("%v: Public = %v, want %v", tc.specs, got, tc.want)
		}
	}
}

func TestLooksLikeFile(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "targets"), []byte("127.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resolved := false
	opt := Options{Ports: []uint16{104}, Resolve: func(context.Context, string) ([]netip.Addr, error) {
		resolved = true
		return nil, errors.New("no DNS here")
	}}
	for _, spec := range []string{"out.xml", "scan.JSON", "results.jsonl:104", "targets", "list.txt"} {
		_, err := Parse(context.Background(), []string{spec}, opt)
		if !errors.Is(err, ErrLooksLikeFile) || !strings.Contains(err.Error(), "-iL") {
			t.Errorf("%s: err = %v, want ErrLooksLikeFile with an -iL hint", spec, err)
		}
	}
	if resolved {
		t.Error("a file-like word was resolved through DNS")
	}
}

func TestErrorText(t *testing.T) {
	long := strings.Repeat("1", 70000)
	for spec, want := range map[string]string{
		"10.0.0.0/33":       `bad target "10.0.0.0/33": prefix length out of range`,
		"10.0.0.300":        `bad target "10.0.0.300": IPv4 field has value >255`,
		"10.0.0.1-10.0.0.x": `bad target "10.0.0.1-10.0.0.x": unexpected character (at "x")`,
		long:                `(70000 bytes)`,
		"2001:db8::1/129":   `prefix length out of range`,
	} {
		_, err := Parse(context.Background(), []string{spec}, Options{Ports: []uint16{104}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.20s: err = %v, want it to hold %q", spec, err, want)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "netip") || strings.Contains(msg, "ParseAddr") || len(msg) > 300 {
			t.Errorf("%.20s: err = %.400s: Go internals or too long", spec, msg)
		}
	}
}

func TestExclusions(t *testing.T) {
	old, err := ParseExclusions([]string{"198.51.100.0/30", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := ParseExclusions([]string{"198.51.100.0-198.51.100.2", "2001:db8::1", "203.0.113.9"})
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]bool{"198.51.100.3": true, "198.51.100.4": false, "::ffff:198.51.100.1": true, "2001:db8::1%eth0": true, "2001:db8::2": false} {
		if got := old.Contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", a, got, want)
		}
	}
	if got := old.Without(cur).Ranges(); len(got) != 1 || got[0] != "198.51.100.3" {
		t.Errorf("Without = %v, want [198.51.100.3]", got)
	}
	if got := cur.Without(old).Ranges(); len(got) != 1 || got[0] != "203.0.113.9" {
		t.Errorf("Without = %v, want [203.0.113.9]", got)
	}
	if _, err := ParseExclusions([]string{"pacs.example.org"}); err == nil {
		t.Error("a hostname exclusion was accepted")
	}
}
