package peertest

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// restartable is a peer process that a test may stop and start again with the same arguments,
// after changing its configuration file: a configuration change proven by a restart.
type restartable struct {
	dir, config string           // working directory; the configuration file the peer reads
	argv        []string         // the command line
	ports       []int            // ports to wait for
	ready       func(testing.TB) // after the ports answer: waits until the peer serves; may be nil
	runs        int              // starts so far: each run logs to a file of its own
	proc        *process
}

func (r *restartable) start(t testing.TB) {
	t.Helper()
	r.runs++
	name := filepath.Base(r.argv[0]) + ".log"
	if r.runs > 1 {
		name = fmt.Sprintf("%s-%d.log", filepath.Base(r.argv[0]), r.runs)
	}
	r.proc = start(t, r.dir, name, r.argv...)
	for _, port := range r.ports {
		r.proc.waitPort(t, port)
	}
	if r.ready != nil {
		r.ready(t)
	}
}

func (r *restartable) restart(t testing.TB) {
	t.Helper()
	cmd := r.proc.cmd
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	r.start(t)
}

// ConfigFile returns the path of the JSON configuration file Orthanc runs with. A test may
// change it, then Restart.
func (o *Orthanc) ConfigFile() string { return o.run.config }

// Restart stops Orthanc and starts it again with its configuration file as it is now, on the
// same ports and storage, and waits until both ports answer.
func (o *Orthanc) Restart(t testing.TB) {
	t.Helper()
	o.run.restart(t)
}

// ConfigFile returns the path of dcmqrscp's configuration file (HostTable, AETable). A test
// may change it, then Restart.
func (q *Dcmqrscp) ConfigFile() string { return q.run.config }

// Restart stops dcmqrscp and starts it again with its configuration file as it is now, on the
// same port and storage areas.
func (q *Dcmqrscp) Restart(t testing.TB) {
	t.Helper()
	q.run.restart(t)
}

// dcmqrscpReady waits until dcmqrscp on port answers an association request (with a
// rejection: the called AE title is none of its own). Just after it starts listening, dcmqrscp
// may reset the first association instead of answering it.
func dcmqrscpReady(port int) func(testing.TB) {
	return func(t testing.TB) {
		t.Helper()
		bin := Require(t, "echoscu")[0]
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := run(context.Background(), bin, "-aec", "PEERTEST_READY", "127.0.0.1", strconv.Itoa(port))
			if err == nil || strings.Contains(out, "Association Rejected") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("dcmqrscp on port %d answers no association: %s", port, tail([]byte(out), 512))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
