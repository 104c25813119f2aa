// Command gendocs writes pacswatch's man pages and shell completions from its command
// definitions (`make man`): DIR/man1/*.1 and DIR/completions/pacswatch.{bash,zsh,fish}.
// Nothing installs them; see the README.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra/doc"

	"github.com/pacswatch/pacswatch/internal/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	root := cli.NewRoot(os.Stdin, io.Discard, io.Discard)
	root.DisableAutoGenTag = true
	man := filepath.Join(dir, "man1")
	comp := filepath.Join(dir, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	header := &doc.GenManHeader{Title: "PACSWATCH", Section: "1", Source: "pacswatch", Manual: "pacswatch manual"}
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	for name, gen := range map[string]func(string) error{
		"pacswatch.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
		"pacswatch.zsh":  root.GenZshCompletionFile,
		"pacswatch.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
	} {
		if err := gen(filepath.Join(comp, name)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}
