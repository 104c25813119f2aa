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
	"github.com/pacswatch/pacswatch/internal/honeypot"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/sim"
	"github.com/pacswatch/pacswatch/internal/sim/demo"
)

func newDemoCmd(e *env) *cobra.Command {
	var out, db string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Simulate a fleet of PACS on loopback, scan it twice, and write demo-report.html",
		Long: `demo starts a simulated fleet of PACS on 127.20.0.0/22 shaped like the 2019 figures (Indian states
and countries, studies scaled 1:1000, and a few honeypots), writes a small MaxMind DB that places its
addresses, scans it, changes the fleet as 60 days did in 2019 (India grows by 61 %, some systems close,
new ones appear), scans it again, flags the honeypots after each scan, and writes the report with its
trend. No network beyond loopback. With --db, the store and its location database (PATH.geo.mmdb) are
kept, so that the report can be made again with pacswatch report.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), e, out, db, seed)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "demo-report.html", "report `FILE` (html, md, csv or json by extension)")
	cmd.Flags().StringVar(&db, "db", "", "keep the demo's store at `PATH`, and its location database at PATH.geo.mmdb (default: temporary ones)")
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
	mmdb, keep := filepath.Join(dir, "demo-city.mmdb"), db != ""
	if db == "" {
		db = filepath.Join(dir, "demo.db")
	} else {
		mmdb = db + ".geo.mmdb"
		for _, p := range []string{db, mmdb} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("demo: %s exists; give a new --db path", p)
			}
		}
	}

	cfg, err := demo.Config(seed)
	if err != nil {
		return err
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
			places[s.Addr.Addr()] = demo.Location(s.Group)
		}
	}
	remember()
	d := demoRun{e: e, db: db, seed: seed, cfg: cfg, say: say}
	if err := d.scan(ctx, "2019-09"); err != nil {
		return err
	}
	if _, err := demo.Age(fleet); err != nil {
		return err
	}
	remember()
	if err := d.scan(ctx, "2019-11"); err != nil {
		return err
	}
	if err := d.sayChange(ctx); err != nil {
		return err
	}
	if err := writePlaces(mmdb, places); err != nil {
		return err
	}
	args := []string{"report", "--db", db, "--geo", mmdb, "-o", out}
	if code := Run(ctx, args, e.stdin, e.stdout, e.stderr); code != ExitOK {
		return errors.New("demo: report failed")
	}
	say("wrote %s in %.1fs", out, time.Since(start).Seconds())
	if keep {
		say("make the report again: pacswatch %s", strings.Join(args, " "))
	}
	return nil
}

// demoRun is one run of the demo: its store and fleet, and the scans made so far.
type demoRun struct {
	e     *env
	db    string
	seed  uint64
	cfg   sim.Config
	say   func(format string, args ...any)
	scans []string // IDs, in order
}

// scan scans the fleet as a run named name, then flags its honeypots.
func (d *demoRun) scan(ctx context.Context, name string) error {
	d.say("scan %q", name)
	args := []string{"scan", d.cfg.CIDR.String(), "-p", joinPorts(d.cfg.Ports), "--db", d.db, "--name", name,
		"--rate", "0", "--timeout", "2s", "--seed", fmt.Sprint(d.seed), "-q"}
	if code := Run(ctx, args, d.e.stdin, io.Discard, d.e.stderr); code > ExitPartial {
		return fmt.Errorf("demo: scan %q failed", name)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := openStore(ctx, d.db)
	if err != nil {
		return err
	}
	defer st.Close()
	sc, err := st.LatestScan(ctx)
	if err != nil {
		return fmt.Errorf("demo: scan %q: %w", name, err)
	}
	d.scans = append(d.scans, sc.ID)
	flagged, err := honeypot.Flag(ctx, st, sc.ID, honeypot.Config{})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.say("scan %q: %d honeypot ports flagged, left out of the totals", name, len(flagged))
	return nil
}

// sayChange says what changed between the two scans, as pacswatch diff counts it.
func (d *demoRun) sayChange(ctx context.Context) error {
	st, err := openExistingStore(ctx, d.db)
	if err != nil {
		return err
	}
	defer st.Close()
	sum, err := report.Diff(ctx, st, d.scans[0], d.scans[1], report.Options{}, func(report.Change) error { return nil })
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	c := sum.Counts
	d.say("sixty days later (pacswatch diff %s %s): %d archives grew, %d shrank, %d closed, %d appeared; accessible studies %s (%s)",
		d.scans[0], d.scans[1], c.Grew, c.Shrank, c.Closed, c.Appeared, report.Percent(sum.Total.Previous.Studies, sum.Total.Studies),
		sum.Total.Trend)
	return nil
}

// writePlaces writes the demo's geo database: a MaxMind City DB that places each address.
func writePlaces(path string, places map[netip.Addr]geo.Location) error {
	var ps []mmdbwrite.Place
	for addr, loc := range places {
		ps = append(ps, mmdbwrite.Place{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Location: loc})
	}
	if err := mmdbwrite.WriteCity(path, "pacswatch-demo-City", geo.LayoutMaxMind, ps); err != nil {
		return fmt.Errorf("demo: write the demo geo database: %w", err)
	}
	return nil
}

func joinPorts(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}
