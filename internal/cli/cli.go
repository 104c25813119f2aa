// Package cli wires pacswatch's subcommands (see SPEC.md "Commands"): flags, arguments and exit
// codes. The work itself lives in the domain packages; a file here per subcommand.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// Exit statuses (SPEC scan): 0 done, 1 done with errors on some targets, 2 bad usage or could not run.
const (
	ExitOK      = 0
	ExitPartial = 1
	ExitUsage   = 2
)

// errPartial means the command finished but some targets ended in error.
var errPartial = errors.New("finished with errors on some targets")

// env is what every subcommand gets: streams, and the context cancelled by Ctrl-C.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// Run executes the command line and returns the exit status. It never panics on user input and
// prints exactly one line per error on stderr.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "pacswatch",
		Short:         "Find, measure and help close internet-exposed medical image archives (PACS)",
		Version:       ul.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(normalizeArgs(args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newScanCmd(e), newReportCmd(e), newDiffCmd(e), newSimCmd(e), newDemoCmd(e), newGuardCmd(e), newVersionCmd(e))
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errPartial):
		return ExitPartial
	}
	// Bad usage and "could not run" (unreadable file, corrupt store) both exit 2, in one line.
	fmt.Fprintf(stderr, "pacswatch: %s\n", firstLine(err.Error()))
	return ExitUsage
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the identity pacswatch shows to servers",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(e.stdout, "pacswatch %s\nimplementation class UID %s\nimplementation version name %s\n",
				ul.Version, ul.ImplementationClassUID, ul.ImplementationVersionName)
			return err
		},
	}
}
