package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/mmdbwrite"
	"github.com/pacswatch/pacswatch/internal/sim"
)

// demoGroup is one place of the demo fleet: systems and studies as the 2019 reports gave them
// (../shared/data/exposure-2019.csv; studies scaled 1:1000), before and after the 60 days between
// the two reports. Countries without published per-country figures are illustrative.
type demoGroup struct {
	country, region     string
	systems             int
	before, after       int // studies at the first and the second scan, 1:1000
	closeAll, newSystem bool
}

var demoGroups = []demoGroup{
	// India, 2019-11 state figures; 2019-09 scaled by 627,000/1,010,000 (the national growth).
	{"IN", "Maharashtra", 46, 191, 308, false, false},
	{"IN", "Karnataka", 7, 114, 183, false, true},
	{"IN", "West Bengal", 2, 107, 173, false, false},
	{"IN", "Telangana", 3, 78, 126, false, false},
	{"IN", "Gujarat", 19, 69, 111, false, false},
	{"IN", "Punjab", 4, 29, 46, false, false},
	// Turkey, 2019-09: 36 systems, 4.9 M studies; shown unchanged.
	{"TR", "", 36, 4924, 4924, false, false},
	// Illustrative: the rest of the world's ~500 systems, scaled down.
	{"US", "", 40, 1500, 1800, false, false},
	{"BR", "", 20, 900, 950, false, false},
	{"DE", "", 12, 400, 0, true, false},
	{"ZA", "", 8, 300, 310, false, false},
	{"AU", "", 8, 250, 120, false, false},
	{"MX", "", 10, 350, 420, false, false},
	{"VN", "", 8, 280, 300, false, false},
}

func newDemoCmd(e *env) *cobra.Command {
	var out, db string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Simulate a fleet of PACS on loopback, scan it twice, and write demo-report.html",
		Long: `demo starts a simulated fleet of PACS on 127.20.0.0/22 shaped like the 2019 figures (Indian states
and countries, studies scaled 1:1000), writes a small MaxMind DB that places its addresses, scans it,
changes the fleet as 60 days did in 2019 (India grows, some systems close, new ones appear), scans it
again, and writes the report with its trend. No network beyond loopback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), e, out, db, seed)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "demo-report.html", "report `FILE` (html, md, csv or json by extension)")
	cmd.Flags().StringVar(&db, "db", "", "keep the demo's store at `PATH` (default: a temporary one)")
	cmd.Flags().Uint64Var(&seed, "seed", 2019, "seed of the simulated fleet")
	return cmd
}

func runDemo(ctx context.Context, e *env, out, db string, seed uint64) error {
	start := time.Now()
	say := func(format string, args ...any) { fmt.Fprintf(e.stderr, "demo: "+format+"\n", args...) }
	dir, err := os.MkdirTemp("", "pacswatch-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if db == "" {
		db = filepath.Join(dir, "demo.db")
	} else if _, err := os.Stat(db); err == nil {
		return fmt.Errorf("demo: %s exists; give a new --db path", db)
	}

	mix, err := sim.ParseMix("hostile=0") // hostile hosts have their own suite; the demo reads like a report
	if err != nil {
		return err
	}
	cfg := sim.Config{
		Seed:    seed,
		CIDR:    netip.MustParsePrefix("127.20.0.0/22"),
		Ports:   []uint16{11112, 4242, 2761, 2762}, // no port 104: the demo must not need root
		Mix:     mix,
		Latency: 100 * time.Millisecond,
	}
	for _, g := range demoGroups {
		cfg.Groups = append(cfg.Groups, sim.Group{Name: g.name(), Hosts: g.systems, Studies: g.before})
		cfg.Hosts += g.systems
	}
	fleet, err := sim.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("demo: start the simulated fleet: %w", err)
	}
	defer fleet.Close()
	say("%d simulated PACS on %s ports %v", cfg.Hosts, cfg.CIDR, cfg.Ports)

	places := map[netip.Addr]geo.Location{}
	remember := func() {
		for _, s := range fleet.Specs() {
			places[s.Addr.Addr()] = groupLocation(s.Group)
		}
	}
	remember()

	scan := func(name string) error {
		say("scan %q", name)
		args := []string{"scan", cfg.CIDR.String(), "-p", joinPorts(cfg.Ports), "--db", db, "--name", name,
			"--rate", "0", "--timeout", "2s", "--seed", fmt.Sprint(seed), "-q"}
		if code := Run(ctx, args, e.stdin, io.Discard, e.stderr); code > ExitPartial {
			return fmt.Errorf("demo: scan %q failed", name)
		}
		return ctx.Err()
	}
	if err := scan("2019-09"); err != nil {
		return err
	}

	// Sixty days later.
	changed, closed, added := 0, 0, 0
	for _, s := range fleet.Specs() {
		g, ok := findGroup(s.Group)
		if !ok || s.Studies == 0 {
			continue
		}
		switch {
		case g.closeAll:
			if err := fleet.Remove(s.Addr); err != nil {
				return err
			}
			closed++
		case g.after != g.before && g.before > 0:
			n := max(1, s.Studies*g.after/g.before)
			if _, err := fleet.Resize(s.Addr, n); err != nil {
				return err
			}
			changed++
		}
	}
	for _, g := range demoGroups {
		if g.newSystem {
			for i := range 3 {
				if _, err := fleet.Add(sim.Spec{Personality: sim.PersonalityRetrieve, Studies: 15 + 5*i, Group: g.name()}); err != nil {
					return err
				}
				added++
			}
		}
	}
	remember()
	say("sixty days later: %d archives grew or shrank, %d closed, %d new", changed, closed, added)
	if err := scan("2019-11"); err != nil {
		return err
	}

	mmdb := filepath.Join(dir, "demo-city.mmdb")
	var ps []mmdbwrite.Place
	for addr, loc := range places {
		ps = append(ps, mmdbwrite.Place{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Location: loc})
	}
	if err := mmdbwrite.WriteCity(mmdb, "pacswatch-demo-City", geo.LayoutMaxMind, ps); err != nil {
		return fmt.Errorf("demo: write the demo geo database: %w", err)
	}
	args := []string{"report", "--db", db, "--geo", mmdb, "-o", out}
	if code := Run(ctx, args, e.stdin, e.stdout, e.stderr); code != ExitOK {
		return errors.New("demo: report failed")
	}
	say("wrote %s in %.1fs", out, time.Since(start).Seconds())
	return nil
}

func (g demoGroup) name() string {
	if g.region != "" {
		return g.country + "/" + g.region
	}
	return g.country
}

func findGroup(name string) (demoGroup, bool) {
	for _, g := range demoGroups {
		if g.name() == name {
			return g, true
		}
	}
	return demoGroup{}, false
}

func groupLocation(name string) geo.Location {
	country, region, _ := strings.Cut(name, "/")
	return geo.Location{Country: country, CountryName: geo.CountryName(country), Region: region}
}

func joinPorts(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}
