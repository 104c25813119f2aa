package cli

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pacswatch/pacswatch/internal/fileout"
)

var (
	unknownCommand   = regexp.MustCompile(`^unknown command "([^"]*)" for "([^"]*)"`)
	unknownFlag      = regexp.MustCompile(`^unknown flag: --([A-Za-z0-9][A-Za-z0-9-]{0,63})$`)
	unknownShorthand = regexp.MustCompile(`^unknown shorthand flag: '(.)' in (-\S+)`)
)

// usageError rewrites cobra's and pflag's usage errors into one line with a suggestion, as git
// and kubectl do: a mistyped command or flag names the closest one; -v without a command says
// what it means.
func usageError(root *cobra.Command, args []string, err error) error {
	msg := err.Error()
	if m := unknownCommand.FindStringSubmatch(msg); m != nil && m[2] == root.Name() {
		line := fmt.Sprintf("unknown command %s", fileout.Quote(m[1]))
		if s := closest(m[1], commandNames(root)); s != "" {
			line += fmt.Sprintf("; did you mean %q?", s)
		}
		return errors.New(line + " (pacswatch --help lists the commands)")
	}
	cmd, _, findErr := root.Find(args)
	if findErr != nil || cmd == nil {
		cmd = root
	}
	if m := unknownShorthand.FindStringSubmatch(msg); m != nil && m[1] == "v" && cmd == root {
		return errors.New("-v means verbose and goes with a command (pacswatch scan -v ...); the version is pacswatch --version")
	}
	if m := unknownFlag.FindStringSubmatch(msg); m != nil {
		line := fmt.Sprintf("unknown flag --%s", m[1])
		if s := closest(m[1], flagNames(cmd)); s != "" {
			line += fmt.Sprintf("; did you mean --%s?", s)
		}
		return fmt.Errorf("%s (pacswatch %s --help lists its flags)", line, strings.TrimPrefix(cmd.CommandPath(), "pacswatch "))
	}
	return err
}

func commandNames(root *cobra.Command) []string {
	var out []string
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() {
			out = append(out, c.Name())
			out = append(out, c.Aliases...)
		}
	}
	return out
}

func flagNames(cmd *cobra.Command) []string {
	var out []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) { out = append(out, f.Name) })
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { out = append(out, f.Name) })
	return out
}

// closest returns the candidate nearest to word: one it starts (word a prefix of at least 2
// letters), else one within an edit distance of a third of its length (at least 1, at most 3);
// "" if none.
func closest(word string, candidates []string) string {
	word = strings.ToLower(word)
	sort.Strings(candidates)
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := distance(word, strings.ToLower(c))
		if len(word) >= 2 && strings.HasPrefix(c, word) {
			d = 0 // a prefix wins: --gro is --group, not --geo
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= min(max(1, len(word)/3), 3) {
		return best
	}
	return ""
}

// distance is the Damerau–Levenshtein distance (optimal string alignment) of a and b, in bytes.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
