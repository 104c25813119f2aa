// Command guardbench measures what pacswatch guard costs: the latency it adds to a C-ECHO and
// to an association (p50, p99), and the throughput of a C-GET of 100 MB through it against the
// same C-GET direct. Everything runs in this process on loopback: an SCP that answers C-ECHO
// and serves a C-GET with synthetic instances of random bytes (no patient data), the guard in
// front of it, and the client. It prints a Markdown section for bench/RESULTS.md.
//
//	go run ./bench/guardbench -mb 100 -instance-kb 1024
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/guard"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
)

var (
	cpuProfile string
	maxPDU     uint32 // the client's maximum PDU length, which the SCP's data PDUs fill
	spliceData bool
	// externalGuard, when set, is the guard's command line: the guard runs in a process of its own.
	externalGuard []string
	// directAddr, viaAddr and linkNote: the SCP and the guard run elsewhere (-direct, -via, -link).
	directAddr, viaAddr, linkNote string
)

const benchPolicy = `
peers:
  - name: bench
    calling_ae: [BENCH]
    source: 127.0.0.1
    services: [echo, get]
    query_levels: [STUDY]
`

func main() {
	mb := flag.Int("mb", 100, "megabytes the C-GET retrieves")
	instKB := flag.Int("instance-kb", 1024, "size of each instance's pixel data, KiB")
	echoes := flag.Int("echoes", 2000, "C-ECHOs timed on one association, each way")
	assocs := flag.Int("assocs", 300, "associations timed (associate, release), each way")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the C-GET through the guard to `FILE`")
	pduKB := flag.Int("pdu-kb", 16, "maximum PDU length the client announces, KiB: the SCP's data PDUs are that large")
	splice := flag.Bool("splice", false, "the guard forwards data sets unread (guard.Config.Splice)")
	guardCmd := flag.String("guard-cmd", "", "run the guard as this command (e.g. \"taskset -c 1 bin/pacswatch guard\"), given --listen, --upstream, --policy and --audit, rather than in this process")
	serveAddr := flag.String("serve", "", "only serve the SCP on `ADDR` (with -mb and -instance-kb) until stopped: the far end of a link")
	flag.StringVar(&directAddr, "direct", "", "measure against the SCP at `ADDR` (started with -serve elsewhere) rather than one of this process")
	flag.StringVar(&viaAddr, "via", "", "with -direct: the guard in front of it, at `ADDR`")
	flag.StringVar(&linkNote, "link", "", "with -direct: words for the link the runs cross, for the report")
	runs := flag.Int("runs", 5, "C-GETs each way, alternating; the first pair is the one run reported, the others show the noise")
	flag.Parse()
	cpuProfile = *prof
	externalGuard = strings.Fields(*guardCmd)
	spliceData = *splice
	maxPDU = uint32(max(1, *pduKB)) << 10
	if *serveAddr != "" {
		if err := serveOnly(*serveAddr, *mb, *instKB); err != nil {
			fmt.Fprintln(os.Stderr, "guardbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*mb, *instKB, *echoes, *assocs, max(1, *runs)); err != nil {
		fmt.Fprintln(os.Stderr, "guardbench:", err)
		os.Exit(1)
	}
}

func run(mb, instKB, echoes, assocs, runs int) error {
	ctx := context.Background()
	n := max(1, mb*1024/instKB)
	if directAddr != "" {
		return measure(ctx, directAddr, viaAddr, fmt.Sprintf("the client here, the SCP and the guard in front of it across %s", linkNote), n, instKB, echoes, assocs, runs)
	}
	srv, err := startSCP(ctx, "127.0.0.1:0", n, instKB<<10)
	if err != nil {
		return err
	}
	pol, err := policy.Parse([]byte(benchPolicy))
	if err != nil {
		return err
	}
	audit, err := os.CreateTemp("", "guardbench-audit-*.jsonl")
	if err != nil {
		return err
	}
	defer os.Remove(audit.Name())
	defer audit.Close()
	var via, where string
	if len(externalGuard) > 0 {
		stop, addr, err := startGuardProcess(ctx, srv, audit.Name())
		if err != nil {
			return err
		}
		defer stop()
		via, where = addr, fmt.Sprintf("the guard runs as `%s` in a process of its own", strings.Join(externalGuard, " "))
	} else {
		g, err := guard.New(guard.Config{Upstream: srv, Audit: audit, Splice: spliceData}, pol)
		if err != nil {
			return err
		}
		gl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go g.Serve(ctx, gl)
		defer g.Close()
		via, where = gl.Addr().String(), "one process on loopback holds an SCP, the guard in front of it (JSON Lines audit to a file) and the client"
	}
	return measure(ctx, srv, via, where, n, instKB, echoes, assocs, runs)
}

// measure times C-ECHOs, associations and C-GETs against srv directly and through the guard at
// via, and prints the Markdown section.
func measure(ctx context.Context, srv, via, where string, n, instKB, echoes, assocs, runs int) error {

	var b strings.Builder
	script := "bench/guard.sh"
	if directAddr != "" {
		script = "bench/guardlink.sh"
	}
	fmt.Fprintf(&b, "### pacswatch guard: added latency and throughput\n\n")
	fmt.Fprintf(&b, "`%s` (%s): %s; maximum PDU %d KiB both ways (16 KiB: as dcmtk and Orthanc use); the guard %s.\n\n",
		"go run ./bench/guardbench "+shellArgs(os.Args[1:]), script, where, maxPDU>>10, map[bool]string{false: "reads every PDU", true: "forwards data sets unread (splice)"}[spliceData])
	b.WriteString("| measure | direct | through the guard | added |\n| --- | --- | --- | --- |\n")
	for _, m := range []struct {
		name string
		f    func(addr string) ([]time.Duration, error)
	}{
		{fmt.Sprintf("C-ECHO round trip (%d on one association)", echoes), func(a string) ([]time.Duration, error) { return echoTimes(ctx, a, echoes) }},
		{fmt.Sprintf("association + release (%d)", assocs), func(a string) ([]time.Duration, error) { return assocTimes(ctx, a, assocs) }},
	} {
		d, err := m.f(srv)
		if err != nil {
			return fmt.Errorf("%s direct: %w", m.name, err)
		}
		gd, err := m.f(via)
		if err != nil {
			return fmt.Errorf("%s through the guard: %w", m.name, err)
		}
		for _, q := range []float64{0.5, 0.99} {
			dq, gq := quantile(d, q), quantile(gd, q)
			fmt.Fprintf(&b, "| %s, p%.0f | %s | %s | %s |\n", m.name, q*100, us(dq), us(gq), us(gq-dq))
		}
	}
	var ratios []float64
	var cpuD, cpuG []time.Duration
	for i := range runs {
		c0 := cpuTime()
		dt, bytesD, err := getOnce(ctx, srv)
		cpuD = append(cpuD, cpuTime()-c0)
		if err != nil {
			return fmt.Errorf("C-GET direct: %w", err)
		}
		if cpuProfile != "" && i == 0 {
			f, err := os.Create(cpuProfile)
			if err != nil {
				return err
			}
			pprof.StartCPUProfile(f)
		}
		c0, p0 := cpuTime(), processCPU(guardPID)
		gt, bytesG, err := getOnce(ctx, via)
		cpuG = append(cpuG, cpuTime()-c0+processCPU(guardPID)-p0)
		if cpuProfile != "" && i == 0 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return fmt.Errorf("C-GET through the guard: %w", err)
		}
		rd, rg := float64(bytesD)/dt.Seconds()/1e6, float64(bytesG)/gt.Seconds()/1e6
		ratios = append(ratios, rg/rd)
		if i == 0 {
			fmt.Fprintf(&b, "| C-GET of %d instances, %.1f MB (one run) | %.2f s, %.0f MB/s | %.2f s, %.0f MB/s | %.0f %% of direct throughput |\n\n",
				n, float64(bytesD)/1e6, dt.Seconds(), rd, gt.Seconds(), rg, 100*rg/rd)
		}
	}
	if runs > 1 {
		slices.Sort(ratios)
		fmt.Fprintf(&b, "The same C-GET %d times each way, alternating, on this shared machine: through the guard %.0f–%.0f %% of direct, median %.0f %%.\n\n",
			runs, 100*ratios[0], 100*ratios[len(ratios)-1], 100*ratios[len(ratios)/2])
	}
	if directAddr == "" { // elsewhere, the SCP and the guard are other processes: no CPU to compare
		d, g := quantile(cpuD, 0.5), quantile(cpuG, 0.5)
		fmt.Fprintf(&b, "CPU time (SCP, client and, the second time, the guard's process or goroutines) per C-GET, median of %d: direct %.0f ms, through the guard %.0f ms; the guard's %.0f ms are %.2f ns per byte forwarded. Less noisy than throughput on a shared machine: it counts work, not waiting.\n\n",
			runs, ms(d), ms(g), ms(g-d), float64(g-d)/float64(int64(n)*int64(instKB)<<10))
	}
	fmt.Fprintf(&b, "Goal: at least 90 %% of direct throughput. The guard forwards each PDU as it came; it reads command sets and C-GET identifiers, never the instances' data sets.\n")
	fmt.Print(b.String())
	return nil
}

// shellArgs quotes the arguments that need it, for the command line the report shows.
func shellArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if strings.ContainsAny(a, " ()'") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func dial(ctx context.Context, addr string) (*ul.Assoc, error) {
	contexts, roles := dimse.ProposeGet()
	return ul.Dial(ctx, addr, ul.Config{CalledAE: "BENCHSCP", CallingAE: "BENCH", Contexts: contexts, Roles: roles, MaxPDU: maxPDU})
}

func echoTimes(ctx context.Context, addr string, n int) ([]time.Duration, error) {
	a, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer a.Release(ctx)
	out := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if st, err := dimse.Echo(ctx, a); err != nil || st != dimse.Success {
			return nil, fmt.Errorf("C-ECHO: %v %w", st, err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func assocTimes(ctx context.Context, addr string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		a, err := ul.Dial(ctx, addr, ul.Config{CalledAE: "BENCHSCP", CallingAE: "BENCH", Contexts: dimse.ProposeQR()})
		if err != nil {
			return nil, err
		}
		if err := a.Release(ctx); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func getOnce(ctx context.Context, addr string) (time.Duration, int64, error) {
	a, err := dial(ctx, addr)
	if err != nil {
		return 0, 0, err
	}
	defer a.Release(ctx)
	var q dicom.Dataset
	q.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	q.Set(dicom.NewString(dicom.StudyInstanceUID, "2.25.1"))
	var total int64
	t0 := time.Now()
	sub, err := dimse.Get(ctx, a, dimse.StudyRootGet, q, func(_ context.Context, _ dimse.StoreRequest, data io.Reader) (dimse.Status, error) {
		n, err := io.Copy(io.Discard, data)
		total += n
		return dimse.Success, err
	})
	d := time.Since(t0)
	if err == nil && sub.Status != dimse.Success {
		err = fmt.Errorf("C-GET status %v", sub.Status)
	}
	return d, total, err
}

// startSCP serves C-ECHO and a C-GET that sends n instances of size bytes of pixel data, on
// addr (a loopback port of its own for 127.0.0.1:0).
func startSCP(ctx context.Context, addr string, n, size int) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	pixels := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range pixels {
		pixels[i] = byte(r.Uint32())
	}
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.SOPClassUID, dimse.StorageClasses[0]))
	ds.Set(dicom.NewString(dicom.SOPInstanceUID, "2.25.42"))
	ds.Set(dicom.Element{Tag: dicom.PixelData, VR: dicom.VROB, Value: pixels})
	payload, err := dicom.Encode(ds, true)
	if err != nil {
		return "", err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(ctx, c, n, payload)
		}
	}()
	return l.Addr().String(), nil
}

func serve(ctx context.Context, c net.Conn, n int, payload []byte) {
	a, err := ul.Accept(ctx, c, ul.ServerConfig{Decide: func(rq *ul.AAssociateRQ) (*ul.AAssociateAC, *ul.AAssociateRJ) {
		ac := ul.DefaultAC(rq, nil, []string{dicom.ExplicitVRLittleEndian})
		ac.UserInfo.Roles = rq.UserInfo.Roles
		return ac, nil
	}})
	if err != nil {
		return
	}
	defer a.Close()
	for {
		id, b, err := a.ReadCommand(ctx)
		if errors.Is(err, ul.ErrReleaseRequested) {
			a.ReplyRelease(ctx)
			return
		}
		if err != nil {
			return
		}
		cmd, err := dimse.DecodeCommand(b)
		if err != nil {
			return
		}
		if cmd.HasDataset {
			if _, err := a.ReadData(ctx); err != nil {
				return
			}
		}
		switch cmd.Field {
		case dimse.CEchoRQ:
			rsp := dimse.Command{Field: dimse.CEchoRSP, AffectedSOPClassUID: dimse.Verification, MessageIDBeingRespondedTo: cmd.MessageID}
			if a.Send(ctx, id, rsp.Encode(), nil) != nil {
				return
			}
		case dimse.CGetRQ:
			if sendInstances(ctx, a, id, cmd, n, payload) != nil {
				return
			}
		default:
			return
		}
	}
}

func sendInstances(ctx context.Context, a *ul.Assoc, id byte, get dimse.Command, n int, payload []byte) error {
	pc, ok := a.Context(dimse.StorageClasses[0])
	if !ok {
		return errors.New("no CT storage context")
	}
	for i := range n {
		rq := dimse.Command{Field: dimse.CStoreRQ, MessageID: uint16(i + 2), AffectedSOPClassUID: dimse.StorageClasses[0],
			AffectedSOPInstanceUID: fmt.Sprintf("2.25.42%d", i), HasDataset: true}
		if err := a.Send(ctx, pc.ID, rq.Encode(), payload); err != nil {
			return err
		}
		if _, _, err := a.ReadCommand(ctx); err != nil {
			return err
		}
	}
	zero, done := uint16(0), uint16(n)
	rsp := dimse.Command{Field: dimse.CGetRSP, AffectedSOPClassUID: get.AffectedSOPClassUID, MessageIDBeingRespondedTo: get.MessageID,
		Remaining: &zero, Completed: &done, Failed: &zero, Warning: &zero}
	return a.Send(ctx, id, rsp.Encode(), nil)
}
