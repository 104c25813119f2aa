package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/targets"
	"github.com/pacswatch/pacswatch/internal/version"
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
	memBudget   int64 // MiB
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
	yes         bool
	quiet       bool
	verbose     int
	logFormat   string
	errorsExit  int // exit status when some targets ended in error
	scale       scaleFlags
}

// scaleFlags are the flags of SPEC "Scale and discovery".
type scaleFlags struct {
	discover       string        // connect or zmap
	connectTimeout time.Duration // the connect stage's wait for an answer
	allTargets     bool          // store closed, filtered and unreachable targets too
	zmapArgs       string        // more zmap flags (interface, source address, gateway MAC)
	redial         bool          // hidden: the probe reconnects after the connect stage (for measurement)
	syn            string        // auto, on or off: the connect stage sends SYNs from raw sockets
}

// addScaleFlags adds the flags of SPEC "Scale and discovery".
func addScaleFlags(fl *pflag.FlagSet, f *scaleFlags) {
	fl.StringVar(&f.discover, "discover", "connect", "how open ports are found: connect (TCP connect stage) or zmap (runs zmap, one process per port; needs root)")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", discover.DefaultConnectTimeout, "how long a connection attempt waits for an answer to its SYN")
	fl.BoolVar(&f.allTargets, "all-targets", false, "store every target, closed and filtered ones too (small audits); by default they are only counted")
	fl.StringVar(&f.zmapArgs, "zmap-args", "", "more zmap flags for --discover zmap, e.g. \"-i eth1 -G 00:11:22:33:44:55\"")
	fl.StringVar(&f.syn, "syn", "auto", "how the connect stage tries IPv4 targets: on (SYNs from raw sockets, as nmap -sS; needs CAP_NET_RAW), off (connect()), auto (on when allowed)")
	fl.BoolVar(&f.redial, "probe-redial", false, "the probe opens its own connection after the connect stage (measurement)")
	_ = fl.MarkHidden("probe-redial")
}

// checkSpace checks that --discover can scan the space: ZMap takes IPv4 addresses only.
func (f *scaleFlags) checkSpace(sp *targets.Space) error {
	if f.discover != "zmap" {
		return nil
	}
	if _, _, err := sp.ZMapLists(); err != nil {
		return fmt.Errorf("--discover zmap: %w", err)
	}
	return nil
}

// check checks the scale flags.
func (f *scaleFlags) check() error {
	switch {
	case f.discover != "connect" && f.discover != "zmap":
		return fmt.Errorf("--discover: %q is not connect or zmap", f.discover)
	case f.connectTimeout <= 0:
		return errors.New("scan: --connect-timeout must be > 0")
	case f.zmapArgs != "" && f.discover != "zmap":
		return errors.New("scan: --zmap-args goes with --discover zmap")
	case f.syn != "auto" && f.syn != "on" && f.syn != "off":
		return fmt.Errorf("--syn: %q is not auto, on or off", f.syn)
	case f.syn == "on":
		if err := discover.SYNAvailable(); err != nil {
			return fmt.Errorf("scan: --syn on: %w", err)
		}
	}
	return nil
}

// useSYN reports whether the connect stage sends SYNs from raw sockets: --syn on, or auto
// when the process may open them.
func (f *scaleFlags) useSYN() bool {
	return f.syn == "on" || f.syn == "auto" && discover.SYNAvailable() == nil
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
  pacswatch scan --resume

  # A large public range does not start without --yes (it prints the count and the time first)
  pacswatch scan 203.0.0.0/16 --yes`

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
	fl.Int64Var(&f.memBudget, "memory-budget", dicomprobe.DefaultMemoryBudget>>20, "`MiB` of counting state (study keys, samples) for all hosts together; a host past it is counted as capped")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "timeout of each step (connect, each PDU exchange)")
	fl.DurationVar(&f.maxHostTime, "max-host-time", 60*time.Second, "time allowed for one host:port")
	fl.StringVar(&f.shard, "shard", "", "scan only shard `I/N` (0-based) of the target space")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the pseudo-random target order (default: random)")
	fl.StringVar(&f.callingAE, "calling-ae", version.CallingAE, "our calling AE title")
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
	fl.BoolVar(&f.yes, "yes", false, "start a scan of more than 65,536 targets with public addresses (asked for again on --resume)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress display")
	fl.CountVarP(&f.verbose, "verbose", "v", "log each host's steps (-v), and more (-vv)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.IntVar(&f.errorsExit, "errors-exit-code", ExitPartial, "exit status of a scan that finished with errors on some targets: 1, or 0 for schedulers that take 1 for a failure (a Kubernetes Job)")
	addScaleFlags(fl, &f.scale)
	return cmd
}

// union returns the ports of a and b, sorted, each once.
func union(a, b []uint16) []uint16 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// readTargets reads -iL: a target list, ZMap's output or masscan's -oL list.
func readTargets(e *env, path string) ([]string, error) {
	if path == "-" {
		return targets.ReadTargets(e.stdin, "stdin")
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return targets.ReadTargets(file, path)
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
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: logAttr}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}
