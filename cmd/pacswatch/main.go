// Command pacswatch finds, measures and helps close internet-exposed medical image archives (PACS).
// See the README and ../shared/SPEC.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pacswatch/pacswatch/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
