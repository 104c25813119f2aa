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
	"github.com/pacswatch/pacswatch/internal/sim/demo"
)

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
	change, err := demo.Age(fleet)
	if err != nil {
		return err
	}
	remember()
	say("sixty days later: %d archives grew or shrank, %d closed, %d new", change.Resized, change.Closed, change.Added)
	if err := scan("2019-11"); err != nil {
		return err
	}

	mmdb := filepath.Join(dir, "demo-city.mmdb")
	if err := writePlaces(mmdb, places); err != nil {
		return err
	}
	args := []string{"report", "--db", db, "--geo", mmdb, "-o", out}
	if code := Run(ctx, args, e.stdin, e.stdout, e.stderr); code != ExitOK {
		return errors.New("demo: report failed")
	}
	say("wrote %s in %.1fs", out, time.Since(start).Seconds())
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
