package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startGuardProcess runs the guard command (externalGuard) in front of upstream, with the bench
// policy and a JSON Lines audit to auditPath, on a free loopback port. It returns a function that
// stops it and the address it listens on, once that address accepts connections.
func startGuardProcess(ctx context.Context, upstream, auditPath string) (stop func(), addr string, err error) {
	dir, err := os.MkdirTemp("", "guardbench-")
	if err != nil {
		return nil, "", err
	}
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(benchPolicy), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // a free port, handed to the guard
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	addr = l.Addr().String()
	l.Close()
	args := append(slices.Clone(externalGuard[1:]), "--listen", addr, "--upstream", upstream, "--policy", pol, "--audit", auditPath)
	cmd := exec.CommandContext(ctx, externalGuard[0], args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("guard command: %w", err)
	}
	guardPID = cmd.Process.Pid
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return stop, addr, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", fmt.Errorf("guard command: %s does not accept connections after 10 s", addr)
		}
	}
}

// guardPID is the guard process's ID when it runs apart (externalGuard); 0 otherwise.
var guardPID int

// processCPU is the CPU time the process pid has used, every thread: the sum of
// /proc/PID/task/*/schedstat's first field (nanoseconds on a CPU). Its command (taskset) execs the
// guard, so the process is the guard's.
func processCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// serveOnly serves the bench SCP on addr until SIGINT or SIGTERM: the far end of a link, for
// -direct and -via on the near end.
func serveOnly(addr string, mb, instKB int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	got, err := startSCP(ctx, addr, max(1, mb*1024/instKB), instKB<<10)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "guardbench: serving", got)
	<-ctx.Done()
	return nil
}
