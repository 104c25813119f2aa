package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/sim"
	"github.com/pacswatch/pacswatch/internal/targets"
)

type simFlags struct {
	hosts    int
	seed     uint64
	cidr     string
	ports    string
	mix      string
	truth    string
	duration time.Duration
	latency  time.Duration
	aeTries  int
}

const simExamples = `  # 2,000 simulated PACS on 127.10.0.0/16, the truth in truth.json, until Ctrl-C
  pacswatch sim --hosts 2000 --seed 1 --truth truth.json

  # Scan them from another terminal, then score the scan against the truth
  pacswatch scan 127.10.0.0/16 --rate 0 -o results.jsonl
  pacswatch sim score --truth truth.json --results results.jsonl

  # Unprivileged ports, no hostile hosts, for five minutes
  pacswatch sim --ports 20104,21112,24242,22761,22762 --mix hostile=0 --duration 5m`

func newSimCmd(e *env) *cobra.Command {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "sim [flags]",
		Short: "Run a simulated fleet of PACS on loopback addresses, for tests and benchmarks",
		Long: `Run a simulated fleet of PACS on loopback addresses, for tests and benchmarks.

Each of --hosts hosts listens on one address of --cidr (inside 127.0.0.0/8) and one of --ports,
with a seeded personality: open, called-dict (called AE check, AE in the dictionary),
called-secret (called AE check, AE in no dictionary), calling (calling AE check), echo-only,
query-only, retrieve, tls, not-dicom, slow, hostile. The other addresses are closed. Every DICOM
host holds synthetic studies with fake patients.

--truth writes what a perfect scanner reports for each host:port; "pacswatch sim score" compares
a scan's results with it. A line "sim: N hosts on CIDR ports P ready" on stderr says the fleet
listens. It runs until Ctrl-C, or for --duration.`,
		Example: simExamples,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSim(cmd.Context(), e, &f)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.IntVar(&f.hosts, "hosts", sim.DefaultHosts, "number of hosts that listen")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of addresses, personalities and archives")
	fl.StringVar(&f.cidr, "cidr", sim.DefaultCIDR.String(), "address block, inside 127.0.0.0/8 (or 198.18.0.0/15 in a test bed)")
	fl.StringVarP(&f.ports, "ports", "p", targets.DefaultPorts, "ports the hosts listen on, one each (104 needs root)")
	fl.StringVar(&f.mix, "mix", "", "personality weights over the default mix: `name=weight,...` (e.g. hostile=0)")
	fl.StringVar(&f.truth, "truth", "", "write the ground truth as JSON to `FILE` (- = stdout)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (default: run until Ctrl-C)")
	fl.DurationVar(&f.latency, "latency", sim.DefaultLatency, "delay of the slow hosts before each reply")
	fl.IntVar(&f.aeTries, "max-ae-tries", sim.DefaultMaxAETries, "AE titles the scanner guesses per target: dictionary AEs are among its guesses")
	cmd.AddCommand(newSimScoreCmd(e))
	return cmd
}

func runSim(ctx context.Context, e *env, f *simFlags) error {
	cidr, err := netip.ParsePrefix(f.cidr)
	if err != nil {
		return fmt.Errorf("--cidr: %w", err)
	}
	ports, err := targets.ParsePorts(f.ports)
	if err != nil {
		return fmt.Errorf("--ports: %w", err)
	}
	mix, err := sim.ParseMix(f.mix)
	if err != nil {
		return fmt.Errorf("--mix: %w", err)
	}
	if f.hosts < 1 || f.duration < 0 || f.latency < 0 || f.aeTries < 2 {
		return errors.New("sim: --hosts must be ≥ 1, --max-ae-tries ≥ 2, --duration and --latency ≥ 0")
	}
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	fleet, err := sim.Start(ctx, sim.Config{
		Hosts: f.hosts, Seed: f.seed, CIDR: cidr, Ports: ports, Mix: mix,
		MaxAETries: f.aeTries, Latency: f.latency,
	})
	if err != nil {
		return err
	}
	defer fleet.Close()
	if f.truth != "" {
		if err := writeTruth(e, f.truth, fleet.Truth()); err != nil {
			return err
		}
	}
	ps := make([]string, len(ports))
	for i, p := range ports {
		ps[i] = fmt.Sprint(p)
	}
	fmt.Fprintf(e.stderr, "sim: %d hosts on %s ports %s ready\n", f.hosts, cidr.Masked(), strings.Join(ps, ","))
	<-ctx.Done()
	return nil
}

func writeTruth(e *env, path string, t sim.Truth) error {
	if path == "-" {
		return t.WriteJSON(e.stdout)
	}
	// Written whole, then renamed: a script that waits for the file never reads half of it.
	tmp := path + ".tmp"
	file, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("--truth: %w", err)
	}
	if err := t.WriteJSON(file); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("--truth: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("--truth: %w", err)
	}
	return nil
}

type scoreFlags struct {
	truth   string
	results string
	format  string
	strict  bool
}

func newSimScoreCmd(e *env) *cobra.Command {
	var f scoreFlags
	cmd := &cobra.Command{
		Use:   "score --truth FILE --results FILE",
		Short: "Compare scan results with a simulated fleet's truth: precision, recall, count errors",
		Long: `Compare scan results (JSON Lines, as pacswatch scan -o writes them) with the truth
"pacswatch sim --truth" wrote: per field and value, how many hosts the truth and the results
have, precision and recall; per count (studies, instances), exact hosts and the error; and
whether every hostile host ended in a classified status within its deadline. Results for
addresses the truth does not list count as closed addresses. With --strict, the exit status
is 1 unless the score is perfect.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runScore(e, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.truth, "truth", "", "truth `FILE` written by pacswatch sim --truth")
	fl.StringVar(&f.results, "results", "-", "scan results, JSON Lines `FILE` (- = stdin)")
	fl.StringVar(&f.format, "format", "text", "output: text or json")
	fl.BoolVar(&f.strict, "strict", false, "exit 1 unless the score is perfect")
	return cmd
}

func runScore(e *env, f *scoreFlags) error {
	if f.truth == "" {
		return errors.New("sim score: --truth FILE is required")
	}
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("--format: %q is not text or json", f.format)
	}
	tf, err := os.Open(f.truth)
	if err != nil {
		return fmt.Errorf("--truth: %w", err)
	}
	defer tf.Close()
	truth, err := sim.ReadTruth(tf)
	if err != nil {
		return err
	}
	var in io.Reader = e.stdin
	if f.results != "-" {
		rf, err := os.Open(f.results)
		if err != nil {
			return fmt.Errorf("--results: %w", err)
		}
		defer rf.Close()
		in = rf
	}
	s, err := sim.CompareJSONL(truth, in)
	if err != nil {
		return err
	}
	if f.format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", " ")
		err = enc.Encode(struct {
			*sim.Score
			Perfect bool `json:"perfect"`
		}{s, s.Perfect()})
	} else {
		err = s.WriteText(e.stdout)
	}
	if err != nil {
		return err
	}
	if f.strict && !s.Perfect() {
		return fmt.Errorf("%w: score not perfect", errPartial)
	}
	return nil
}
