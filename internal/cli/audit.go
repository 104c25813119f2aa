package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/audit"
	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/version"
)

// errChecksFailed is `pacswatch audit`'s exit 1: it ran, and some check failed.
var errChecksFailed = fmt.Errorf("%w: a check failed", errPartial)

// auditFlags are the SPEC's audit flags.
type auditFlags struct {
	web       []string
	calledAE  string
	callingAE string
	defCreds  bool
	product   string
	format    string
	output    string
	tls       string
	timeout   time.Duration
	verbose   int
	logFormat string
}

const auditExamples = `  # Is my archive open, and how do I close it? (Orthanc: name its HTTP port too)
  pacswatch audit 192.168.10.5:4242 --web http://192.168.10.5:8042

  # With the archive's own AE title, so that the calling-AE check can be judged
  pacswatch audit pacs.hospital.example:11112 --called-ae HOSP_ARCH

  # In CI: exit 1 when a check fails, results for the code-scanning service
  pacswatch audit 10.1.2.3:104 --format sarif -o audit.sarif`

func newAuditCmd(e *env) *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit HOST[:PORT] [flags]",
		Short: "Check one PACS against every check, with the change that closes each failure (exit 1 when one fails)",
		Long: `Check one PACS: called- and calling-AE enforcement, C-FIND, retrieval and storage from an unknown
caller (a storage context is proposed, no object is ever sent), DICOM TLS and its certificate, the
web front end's authentication and default login, known-vulnerable versions, honeypot signs.
Each failed check comes with remediation for the product found (Orthanc, dcmtk dcmqrscp,
dcm4chee-arc-light, Conquest, or generic). Without a port, the default DICOM ports are tried.
Exit status: 0 every check passed (or could not apply), 1 a check failed, 2 could not run.`,
		Example: auditExamples,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("audit takes one HOST[:PORT], got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAudit(cmd.Context(), e, &f, args[0])
		},
	}
	cmd.SetFlagErrorFunc(flagError)
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringSliceVar(&f.web, "web", nil, "the system's web front end `URL` (http://HOST:PORT; repeat for several)")
	fl.StringVar(&f.calledAE, "called-ae", "", "the archive's own AE `title`, to judge calling-AE enforcement behind a called-AE check")
	fl.StringVar(&f.callingAE, "calling-ae", version.CallingAE, "our calling AE title")
	fl.BoolVar(&f.defCreds, "default-creds", false, "try the web front ends' documented default logins (orthanc:orthanc, dcm4chee admin:admin)")
	fl.StringVar(&f.product, "product", "", "write remediation for this `product`: "+strings.Join(audit.ProductKeys, ", ")+" (default: the one recognised)")
	fl.StringVar(&f.format, "format", "text", "text, json, junit or sarif")
	fl.StringVarP(&f.output, "output", "o", "", "write to `FILE` instead of stdout")
	fl.StringVar(&f.tls, "tls", "auto", "DICOM TLS: auto (on port 2762 and after a failed plain attempt), on or off")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "timeout of each step (connect, each PDU exchange, each HTTP request)")
	fl.CountVarP(&f.verbose, "verbose", "v", "log each step (-v), and every PDU (-vv)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// runAudit is `pacswatch audit`: check the flags, audit, write the report, and say by the exit
// status whether a check failed.
func runAudit(ctx context.Context, e *env, f *auditFlags, target string) error {
	format, err := audit.ParseFormat(f.format)
	if err != nil {
		return err
	}
	tlsMode, err := dicomprobe.ParseTLSMode(f.tls)
	if err != nil {
		return fmt.Errorf("--tls: %s", strings.TrimPrefix(err.Error(), "dicomprobe: "))
	}
	if f.timeout <= 0 {
		return errors.New("--timeout: must be positive")
	}
	if err := dicomprobe.ValidAE(f.callingAE); err != nil {
		return fmt.Errorf("--calling-ae: %w", err)
	}
	logger, err := newLogger(e.stderr, f.verbose, f.logFormat)
	if err != nil {
		return err
	}
	var out *fileout.File
	if f.output != "" && f.output != "-" {
		if out, err = fileout.Create(f.output); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		defer out.Abort()
	}
	rep, err := audit.Run(ctx, audit.Config{
		Target: target, Web: f.web, CalledAE: f.calledAE, CallingAE: f.callingAE, DefaultCreds: f.defCreds,
		Product: f.product, TLS: tlsMode, Timeout: f.timeout, Logger: logger,
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: audit of %s stopped", errInterrupted, fileout.Show(target))
		}
		return fmt.Errorf("audit %s: %w", fileout.Show(target), err)
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf, format); err != nil {
		return err
	}
	if out == nil {
		if _, err := e.stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	} else {
		if _, err := out.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		if err := out.Commit(); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		fmt.Fprintf(e.stderr, "audit of %s written to %s (%s): %d failed, %d passed, %d not checked\n",
			rep.Target, fileout.Show(f.output), format, rep.Summary.Fail, rep.Summary.Pass, rep.Summary.Skip)
	}
	if rep.Failed() {
		return errChecksFailed
	}
	return nil
}
