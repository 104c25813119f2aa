package cli

import (
	"errors"
	"fmt"
	"strings"
)

// nmapOutputs are nmap's output flags, which pflag would read as -o plus a file name glued to it
// (-oX out.xml becomes -o X and a target out.xml): each gets one line saying what to use instead.
var nmapOutputs = map[string]string{
	"-oX": "XML", "-oG": "grepable", "-oN": "normal", "-oA": "all formats", "-oS": "script kiddie",
	"-oJ": "JSON",
}

// errNmapOutput explains that pacswatch writes JSON Lines and reports, not nmap's formats.
func errNmapOutput(flag string) error {
	return fmt.Errorf("%s: pacswatch writes no nmap %s output; use -o FILE for JSON Lines (one record per host:port) and `pacswatch report` for tables (html, md, csv, json)", flag, nmapOutputs[flag])
}

// normalizeArgs rewrites nmap's "-iL" into "--input-list" before flag parsing, and refuses nmap's
// output flags in one line rather than let them be read as -o and a target.
func normalizeArgs(args []string) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		switch {
		case a == "-iL":
			a = "--input-list"
		case strings.HasPrefix(a, "-iL="):
			a = "--input-list=" + a[len("-iL="):]
		case len(a) >= 3 && nmapOutputs[a[:3]] != "":
			return nil, errNmapOutput(a[:3])
		}
		out[i] = a
	}
	return out, nil
}

// errInterrupted means the user stopped the command (Ctrl-C, SIGTERM): exit 130.
var errInterrupted = errors.New("interrupted")
