package cli

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/probe/webprobe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// scanFlags are the SPEC's scan flags. They are stored with the scan so --resume continues it
// with the same settings.
type scanFlags struct {
	inputList   string
	ports       string
	exclude     []string
	excludeFile string
	rate        float64
	concurrency int
	timeout     time.Duration
	maxHostTime time.Duration
	shard       string
	seed        uint64
	callingAE   string
	calledAE    string
	aeDict      string
	maxAETries  int
	depth       string
	tls         string
	verify      bool
	web         bool
	webPorts    string
	defCreds    bool
	db          string
	output      string
	name        string
	resume      bool
	quiet       bool
	verbose     int
	logFormat   string
}

const scanExamples = `  # Is my own archive open? (loopback and private addresses are scanned when named)
  pacswatch scan 192.168.10.5

  # A range on the default DICOM ports, results to the store and to JSON Lines
  pacswatch scan 203.0.113.0/24 -o results.jsonl

  # Targets from a file, one of four machines, 500 new connections per second
  pacswatch scan -iL ranges.txt --shard 2/4 --seed 42 --rate 500

  # Only count systems and AE checks, no queries
  pacswatch scan 198.51.100.7:11112 --depth echo

  # Continue the last scan after Ctrl-C or a crash
  pacswatch scan --resume`

func newScanCmd(e *env) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:     "scan TARGET... [flags]",
		Short:   "Discover DICOM services and measure what they expose",
		Example: scanExamples,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd.Context(), e, cmd.Flags(), &f, args)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVarP(&f.inputList, "input-list", "i", "", "read targets from `FILE`, one per line, # comments (- = stdin); nmap's -iL")
	fl.StringVarP(&f.ports, "ports", "p", targets.DefaultPorts, "DICOM `ports` to probe: list and ranges")
	fl.StringSliceVar(&f.exclude, "exclude", nil, "never scan these `CIDR,...` (addresses, prefixes, ranges)")
	fl.StringVar(&f.excludeFile, "exclude-file", "", "never scan the targets listed in `FILE`")
	fl.Float64Var(&f.rate, "rate", 1000, "new connections per second, at most")
	fl.IntVar(&f.concurrency, "concurrency", 1000, "targets probed at once, at most (one at a time per address)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "timeout of each step (connect, each PDU exchange)")
	fl.DurationVar(&f.maxHostTime, "max-host-time", 60*time.Second, "time allowed for one host:port")
	fl.StringVar(&f.shard, "shard", "", "scan only shard `I/N` (0-based) of the target space")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the pseudo-random target order (default: random)")
	fl.StringVar(&f.callingAE, "calling-ae", "PACSWATCH", "our calling AE title")
	fl.StringVar(&f.calledAE, "called-ae", "", "called AE title to use (default: ANY-SCP, then the AE dictionary)")
	fl.StringVar(&f.aeDict, "ae-dict", "", "AE dictionary `FILE` (default: built in)")
	fl.IntVar(&f.maxAETries, "max-ae-tries", 8, "associations per target while guessing the called AE")
	fl.StringVar(&f.depth, "depth", "query", "how far to go: connect, associate, echo or query")
	fl.BoolVar(&f.verify, "verify-retrieve", false, "prove retrieval: start a C-GET of one instance, read its first bytes, abort, keep nothing")
	fl.BoolVar(&f.web, "web", false, "also probe PACS web front ends (Orthanc REST, DICOMweb, dcm4chee-arc, OHIF, Dicoogle) on --web-ports")
	fl.StringVar(&f.webPorts, "web-ports", "80,443,8042,8080,8443", "web `ports` probed with --web")
	fl.BoolVar(&f.defCreds, "default-creds", false, "with --web, try the documented product default logins (orthanc:orthanc, dcm4chee admin:admin)")
	fl.StringVar(&f.tls, "tls", "auto", "DICOM TLS: auto (on port 2762 and after a failed plain attempt), on or off")
	fl.StringVar(&f.db, "db", "pacswatch.db", "store: SQLite `PATH`")
	fl.StringVarP(&f.output, "output", "o", "", "also write results as JSON Lines to `FILE` (- = stdout)")
	fl.StringVar(&f.name, "name", "", "a `LABEL` for this scan")
	fl.BoolVar(&f.resume, "resume", false, "continue the latest unfinished scan in the store with its own settings")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress display")
	fl.CountVarP(&f.verbose, "verbose", "v", "log each host's steps (-v), and more (-vv)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// normalizeArgs rewrites nmap's "-iL" into "--input-list" before flag parsing.
func normalizeArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case a == "-iL":
			a = "--input-list"
		case strings.HasPrefix(a, "-iL="):
			a = "--input-list=" + a[len("-iL="):]
		}
		out[i] = a
	}
	return out
}

func runScan(ctx context.Context, e *env, fl *pflag.FlagSet, f *scanFlags, args []string) error {
	logger, err := newLogger(e.stderr, f.verbose, f.logFormat)
	if err != nil {
		return err
	}
	var (
		st store.Store
		sc store.Scan
	)
	if f.resume {
		if len(args) > 0 || f.inputList != "" {
			return errors.New("scan: --resume takes no targets: it continues the stored scan with its own")
		}
		if _, err := os.Stat(f.db); err != nil {
			return fmt.Errorf("scan: --resume: no store at %s", f.db)
		}
		if st, err = openStore(ctx, f.db); err != nil {
			return err
		}
		defer st.Close()
		if sc, err = unfinishedScan(ctx, st); err != nil {
			return err
		}
		if err := restoreFlags(fl, sc.Settings); err != nil {
			return fmt.Errorf("scan: resume scan %s: %w", sc.ID, err)
		}
		args = sc.Targets
	}

	specs := args
	if f.inputList != "" && !f.resume {
		list, err := readList(e, f.inputList)
		if err != nil {
			return err
		}
		specs = append(specs, list...)
	}
	if len(specs) == 0 {
		return errors.New("scan: no targets (give TARGET arguments or -iL FILE)")
	}
	ports, err := targets.ParsePorts(f.ports)
	if err != nil {
		return fmt.Errorf("--ports: %w", err)
	}
	var webPorts []uint16
	if f.web {
		if webPorts, err = targets.ParsePorts(f.webPorts); err != nil {
			return fmt.Errorf("--web-ports: %w", err)
		}
	} else if fl.Changed("web-ports") || f.defCreds {
		return errors.New("scan: --web-ports and --default-creds go with --web")
	}
	var exclude []string
	for _, x := range f.exclude {
		exclude = append(exclude, strings.Split(x, ",")...)
	}
	if f.excludeFile != "" {
		list, err := readList(e, f.excludeFile)
		if err != nil {
			return err
		}
		exclude = append(exclude, list...)
	}
	shard, shards := uint64(0), uint64(1)
	if f.shard != "" {
		if shard, shards, err = targets.ParseShard(f.shard); err != nil {
			return fmt.Errorf("--shard: %w", err)
		}
	}
	depth, err := dicomprobe.ParseDepth(f.depth)
	if err != nil {
		return fmt.Errorf("--depth: %w", err)
	}
	tlsMode, err := dicomprobe.ParseTLSMode(f.tls)
	if err != nil {
		return fmt.Errorf("--tls: %w", err)
	}
	if err := dicomprobe.ValidAE(f.callingAE); err != nil {
		return fmt.Errorf("--calling-ae: %w", err)
	}
	if f.calledAE != "" {
		if err := dicomprobe.ValidAE(f.calledAE); err != nil {
			return fmt.Errorf("--called-ae: %w", err)
		}
	}
	var dict dicomprobe.Dict
	if f.aeDict != "" {
		if dict, err = dicomprobe.LoadDict(f.aeDict); err != nil {
			return fmt.Errorf("--ae-dict: %w", err)
		}
	}
	if f.rate < 0 || f.concurrency < 1 || f.timeout <= 0 || f.maxHostTime <= 0 || f.maxAETries < 1 {
		return errors.New("scan: --rate must be ≥ 0, --concurrency and --max-ae-tries ≥ 1, --timeout and --max-host-time > 0")
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return fmt.Errorf("--log-format: %q is not text or json", f.logFormat)
	}

	space, err := targets.Parse(ctx, specs, targets.Options{Ports: union(ports, webPorts), Exclude: exclude})
	if err != nil {
		return err
	}

	if !f.resume {
		// Opened only now, so that bad input leaves no store behind.
		if st, err = openStore(ctx, f.db); err != nil {
			return err
		}
		defer st.Close()
		seed := f.seed
		if !fl.Changed("seed") {
			var b [8]byte
			_, _ = rand.Read(b[:])
			seed = binary.LittleEndian.Uint64(b[:])
			_ = fl.Set("seed", strconv.FormatUint(seed, 10))
		}
		sc, err = st.CreateScan(ctx, store.Scan{
			Name:     f.name,
			Targets:  specs,
			Settings: changedFlags(fl),
			Total:    space.Order(seed, shard, shards).Len(),
			Seed:     seed,
			Shard:    f.shard,
		})
		if err != nil {
			return err
		}
	}
	it := space.Order(sc.Seed, shard, shards)

	var out io.Writer
	if f.output != "" {
		if f.output == "-" {
			out = e.stdout
		} else {
			file, err := os.Create(f.output)
			if err != nil {
				return fmt.Errorf("-o: %w", err)
			}
			defer file.Close()
			out = file
		}
	}
	enc := json.NewEncoder(out)
	if f.resume && out != nil {
		// The store is the truth: a kill can fall between a batch's commit and its JSON Lines.
		// Write what is stored first, then what this run adds: complete, and nothing twice.
		if err := st.Results(ctx, sc.ID, func(r probe.Result) error { return enc.Encode(r) }); err != nil {
			return fmt.Errorf("-o: rewrite stored results: %w", err)
		}
	}

	secret, err := st.Secret(ctx)
	if err != nil {
		return err
	}
	prober := dicomprobe.New(dicomprobe.Config{
		TLS:            tlsMode,
		VerifyRetrieve: f.verify,
		Secret:         secret,
		CallingAE:      f.callingAE,
		CalledAE:       f.calledAE,
		Dict:           dict,
		MaxAETries:     f.maxAETries,
		Depth:          depth,
		Timeout:        f.timeout,
		Logger:         logger,
	})
	var p scan.Prober = prober
	if f.web {
		p = byPort{
			dicom: prober, dicomPorts: ports, webPorts: webPorts,
			web: webprobe.New(webprobe.Config{Timeout: f.timeout, DefaultCreds: f.defCreds, Logger: logger}),
		}
	}
	cfg := scan.Config{
		Rate:        f.rate,
		Concurrency: f.concurrency,
		MaxHostTime: f.maxHostTime,
		Logger:      logger,
	}
	if out != nil {
		cfg.OnResult = func(r probe.Result) error { return enc.Encode(r) }
	}
	var prog *scan.Progress
	if file, ok := e.stderr.(*os.File); ok && !f.quiet && f.verbose == 0 && scan.IsTerminal(file) {
		prog = scan.NewProgress(e.stderr, it.Len())
		cfg.Progress = prog.Update
	}
	logger.Info("scan", "id", sc.ID, "targets", it.Len(), "resume", f.resume)
	stats, err := scan.Run(ctx, st, sc, it, p, cfg)
	if prog != nil {
		prog.Finish(stats)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("scan %s interrupted after %d of %d targets; continue with: pacswatch scan --resume --db %s", sc.ID, stats.Done, stats.Total, f.db)
	}
	if err != nil {
		// A store that filled up or failed keeps every batch committed before: say how to go on.
		return fmt.Errorf("scan %s: %w; what was stored is kept: once fixed, continue with: pacswatch scan --resume --db %s", sc.ID, err, f.db)
	}
	if !f.quiet {
		fmt.Fprintf(e.stderr, "scan %s: %d targets, %d open, %d DICOM, %d exposed, %d errors\n",
			sc.ID, stats.Done, stats.Open, stats.DICOM, stats.Exposed, stats.Errors)
	}
	if stats.Errors > 0 {
		return errPartial
	}
	return nil
}

// byPort sends each target to the DICOM or the web prober by its port; a port in both lists gets
// both, and the web records join the DICOM result.
type byPort struct {
	dicom, web           scan.Prober
	dicomPorts, webPorts []uint16
}

func (b byPort) Probe(ctx context.Context, t targets.Target) probe.Result {
	isDICOM, isWeb := slices.Contains(b.dicomPorts, t.Port), slices.Contains(b.webPorts, t.Port)
	switch {
	case isWeb && !isDICOM:
		return b.web.Probe(ctx, t)
	case isWeb && isDICOM:
		r := b.dicom.Probe(ctx, t)
		if r.Status != probe.StatusClosed && r.Status != probe.StatusFiltered {
			r.Web = b.web.Probe(ctx, t).Web
		}
		return r
	}
	return b.dicom.Probe(ctx, t)
}

// union returns the ports of a and b, sorted, each once.
func union(a, b []uint16) []uint16 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// unfinishedScan returns the latest scan of the store that has not finished.
func unfinishedScan(ctx context.Context, st store.Store) (store.Scan, error) {
	scans, err := st.Scans(ctx)
	if err != nil {
		return store.Scan{}, err
	}
	for i := len(scans) - 1; i >= 0; i-- {
		if scans[i].Finished.IsZero() {
			return scans[i], nil
		}
	}
	return store.Scan{}, errors.New("scan: --resume: no unfinished scan in the store")
}

// changedFlags records the flags the user set (and the seed), to resume with the same settings.
func changedFlags(fl *pflag.FlagSet) map[string]string {
	m := map[string]string{}
	fl.Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "resume", "input-list":
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			m[f.Name] = strings.Join(sv.GetSlice(), ",")
			return
		}
		m[f.Name] = f.Value.String()
	})
	return m
}

// restoreFlags applies a stored scan's settings; flags given now on the command line win.
func restoreFlags(fl *pflag.FlagSet, settings map[string]string) error {
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if fl.Changed(k) || fl.Lookup(k) == nil {
			continue
		}
		if err := fl.Set(k, settings[k]); err != nil {
			return fmt.Errorf("stored flag --%s: %w", k, err)
		}
	}
	return nil
}

func readList(e *env, path string) ([]string, error) {
	if path == "-" {
		return targets.ReadList(e.stdin, "stdin")
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return targets.ReadList(file, path)
}

// newLogger returns the log on stderr: warnings only by default, each host's steps with -v.
func newLogger(w io.Writer, verbose int, format string) (*slog.Logger, error) {
	level := slog.LevelWarn
	switch {
	case verbose == 1:
		level = slog.LevelDebug
	case verbose >= 2:
		level = slog.LevelDebug - 4
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}
