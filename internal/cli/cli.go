// Package cli wires pacswatch's subcommands (see SPEC.md "Commands"): flags, arguments and exit
// codes. The work itself lives in the domain packages; a file here per subcommand.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/version"
)

// Exit statuses (SPEC "Commands"): 0 done, 1 done with errors on some targets, 2 bad usage or could
// not run, 130 interrupted (a scan stays resumable).
const (
	ExitOK          = 0
	ExitPartial     = 1
	ExitUsage       = 2
	ExitInterrupted = 130
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
	root := newRoot(e)
	args, err := normalizeArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "pacswatch: %s\n", err)
		return ExitUsage
	}
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errPartial):
		return ExitPartial
	case errors.Is(err, errInterrupted) || ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "pacswatch: %s\n", firstLine(err.Error()))
		return ExitInterrupted
	}
	// Bad usage and "could not run" (unreadable file, corrupt store) both exit 2, in one line.
	fmt.Fprintf(stderr, "pacswatch: %s\n", firstLine(usageError(root, args, err).Error()))
	return ExitUsage
}

// maxErrorLine caps an error line: a message never repeats a huge input whole.
const maxErrorLine = 1000

// firstLine returns the first line of an error message, capped at maxErrorLine bytes.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > maxErrorLine {
		cut := maxErrorLine
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// newRoot returns the pacswatch command with every subcommand.
func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "pacswatch",
		Short:         "Find, measure and help close internet-exposed medical image archives (PACS)",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version without cobra's -v shorthand: -v means verbose, in every command that logs.
	root.Flags().Bool("version", false, "print the version")
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.AddCommand(newScanCmd(e), newScansCmd(e), newReportCmd(e), newDiffCmd(e), newAuditCmd(e), newSimCmd(e), newDemoCmd(e), newGuardCmd(e), newMergeCmd(e), newServeCmd(e), newWatchCmd(e), newVersionCmd(e))
	return root
}

// NewRoot returns the command tree, for generating man pages and completions from it
// (scripts/gendocs).
func NewRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	return newRoot(&env{stdin: stdin, stdout: stdout, stderr: stderr})
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the identity pacswatch shows to servers",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(e.stdout, "pacswatch %s\nimplementation class UID %s\nimplementation version name %s\n",
				version.Version, version.ImplementationClassUID, version.ImplementationVersionName)
			return err
		},
	}
}
