// Command pgserver runs a throwaway PostgreSQL server for the bench scripts (as pgtest does for
// tests): Debian's postgresql in a new directory, as nobody when run as root, on a Unix socket
// only. It prints "url URL" once the server accepts connections, a new database's URL per
// -dbs, and stops the server on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pacswatch/pacswatch/internal/store/postgres/pgtest"
)

func main() {
	durable := flag.Bool("durable", false, "PostgreSQL's own defaults (fsync, synchronous commit), as in production")
	dbs := flag.Int("dbs", 1, "databases to create")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := pgtest.Start(ctx, pgtest.Options{Durable: *durable})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgserver:", err)
		os.Exit(1)
	}
	for range *dbs {
		u, err := srv.CreateDB(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgserver:", err)
			srv.Stop()
			os.Exit(1)
		}
		fmt.Println("url", u)
	}
	<-ctx.Done()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgserver:", err)
		os.Exit(1)
	}
}
