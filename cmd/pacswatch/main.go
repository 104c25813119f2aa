// Command pacswatch finds, measures and helps close internet-exposed medical image archives (PACS).
// See the README and ../shared/SPEC.md.
package main

import (
	"context"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/pacswatch/pacswatch/internal/cli"
)

func main() {
	// pacswatch logs through slog only. The standard logger is net/http's, which prints bytes a
	// server sent unasked ("Unsolicited response received on idle HTTP channel ..."): a hostile
	// web server could put anything, patient names included, on our stderr.
	log.SetOutput(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
