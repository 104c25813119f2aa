package discover

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestZMapArgs(t *testing.T) {
	z := &ZMap{Ports: []uint16{104, 11112}, Seed: 42, Shard: 2, Shards: 4, Rate: 10000, Args: []string{"-i", "veth0"}}
	got := strings.Join(z.args(104, "/d/allow", "/d/block"), " ")
	for _, want := range []string{"-p 104", "-w /d/allow", "-b /d/block", "-e 42", "--shards 4 --shard 2", "-r 5000", "-O csv", "-o -", "-i veth0"} {
		if !strings.Contains(got, want) {
			t.Errorf("zmap args %q lack %q", got, want)
		}
	}
	z.Shards, z.Rate = 1, 0
	got = strings.Join(z.args(11112, "/d/allow", "/d/block"), " ")
	if strings.Contains(got, "--shard") || strings.Contains(got, "-r ") {
		t.Errorf("unsharded, unlimited zmap args %q name a shard or a rate", got)
	}
}

func TestReadZMapCSV(t *testing.T) {
	in := "saddr,sport,classification,success,repeat\n" +
		"198.18.64.7,104,synack,1,0\n198.18.64.8,104,rst,0,0\n198.18.64.7,104,synack,1,1\n198.18.64.9,104,other,0,0\n"
	var got []Hit
	if err := readZMapCSV(strings.NewReader(in), 104, func(h Hit) { got = append(got, h) }); err != nil {
		t.Fatal(err)
	}
	want := []Hit{{Addr: netip.MustParseAddrPort("198.18.64.7:104")}, {Addr: netip.MustParseAddrPort("198.18.64.8:104"), Closed: true}}
	if !slices.Equal(got, want) {
		t.Errorf("hits %v, want %v", got, want)
	}
	if err := readZMapCSV(strings.NewReader("saddr,sport,classification,success,repeat\nnope\n"), 104, func(Hit) {}); err == nil {
		t.Error("a malformed line gave no error")
	}
}

func TestZMapMissing(t *testing.T) {
	z := &ZMap{Path: filepath.Join(t.TempDir(), "zmap"), Ports: []uint16{104}, Allow: []netip.Prefix{netip.MustParsePrefix("198.18.64.0/24")}}
	err := z.Run(context.Background(), func(Hit) { t.Error("a hit without zmap") })
	if !errors.Is(err, ErrNoZMap) || strings.Contains(err.Error(), "\n") {
		t.Errorf("Run without zmap = %v, want one line wrapping ErrNoZMap", err)
	}
}

// TestZMapFails: a zmap that exits with an error gives one line with zmap's own reason. The
// stand-in sends nothing.
func TestZMapFails(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "zmap")
	script := "#!/bin/sh\necho 'Dec 06 03:40:18.467 [INFO] zmap: started' >&2\n" +
		"echo 'Dec 06 03:40:18.468 [FATAL] zmap: could not detect default route' >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	z := &ZMap{Path: fake, Ports: []uint16{104, 4242}, Allow: []netip.Prefix{netip.MustParsePrefix("198.18.64.0/24")}}
	err := z.Run(context.Background(), func(Hit) {})
	if err == nil || !strings.Contains(err.Error(), "zmap: could not detect default route") || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "failed") {
		t.Errorf("Run of a failing zmap = %v, want one line with its reason", err)
	}
}
