package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// CheckArgs parses the command line of a command that deployments run (scan, scans, report,
// diff, merge) as Run would, flags and arguments, and runs nothing: nil when pacswatch accepts
// it, else the error Run would print. Deployment manifests are tested with it (deploy/k8s), so
// that a pod can never carry a flag the binary refuses.
func CheckArgs(args []string) error {
	args, err := normalizeArgs(args)
	if err != nil {
		return err
	}
	e := &env{}
	root := &cobra.Command{Use: "pacswatch", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newScanCmd(e), newScansCmd(e), newReportCmd(e), newDiffCmd(e), newMergeCmd(e))
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if cmd == root {
		return fmt.Errorf("%q is not a command that deployments run", args)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return fmt.Errorf("%s: %w", cmd.Name(), err)
	}
	return cmd.ValidateArgs(cmd.Flags().Args())
}
