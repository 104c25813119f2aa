package discover

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ErrNoZMap is wrapped by ZMap.Run's error when the zmap program cannot be found.
var ErrNoZMap = errors.New("discover: zmap is not installed (Debian: apt-get install zmap)")

// ZMap runs Debian's zmap (2.1; one port per process) for discovery (SPEC --discover zmap):
// one process per port, each with the scan's seed and shard, its share of the rate, the
// space's addresses as its allowlist and the reserved blocks and exclusions outside the space
// as its blocklist (so zmap's own blocklist file is not read), and streams the targets that
// answered as they come. ZMap needs raw sockets (root, or CAP_NET_RAW) and an interface with a
// route to the targets: Args gives the interface, source address and gateway MAC when zmap
// cannot find them.
type ZMap struct {
	Path   string         // the zmap program; default "zmap" on $PATH
	Ports  []uint16       // one process each
	Allow  []netip.Prefix // the addresses to scan (targets.Space.ZMapLists)
	Block  []netip.Prefix // never sent to
	Seed   uint64         // zmap -e: the address permutation
	Shard  uint64         // zmap --shard, of Shards (0-based)
	Shards uint64         // zmap --shards; 0 or 1: unsharded
	Rate   float64        // SYNs per second over every port; 0: zmap's default (10,000 per process)
	Args   []string       // more zmap flags, e.g. -i IFACE -S SRC -G GATEWAY-MAC
	Dir    string         // where the allowlist and blocklist files go; default os.TempDir
}

// Args returns the zmap command line for port, given the allowlist and blocklist files.
func (z *ZMap) args(port uint16, allow, block string) []string {
	a := []string{
		"-p", strconv.Itoa(int(port)),
		"-w", allow, "-b", block,
		"-e", strconv.FormatUint(z.Seed, 10),
		"-O", "csv", "-f", "saddr,sport,classification,success,repeat",
		"--output-filter", "repeat = 0",
		"-o", "-", "-q", "--disable-syslog",
	}
	if z.Shards > 1 {
		a = append(a, "--shards", strconv.FormatUint(z.Shards, 10), "--shard", strconv.FormatUint(z.Shard, 10))
	}
	if z.Rate > 0 {
		a = append(a, "-r", strconv.Itoa(max(1, int(z.Rate/float64(len(z.Ports))))))
	}
	return append(a, z.Args...)
}

// Run runs zmap for every port at once and calls hit, from one goroutine at a time, for every
// target that answered: SYN-ACK (open) or RST (Closed). It returns when every process has
// exited: nil if all succeeded, else one line naming the first failure (ErrNoZMap when zmap is
// missing). When ctx ends, the processes are killed and Run returns ctx.Err().
func (z *ZMap) Run(ctx context.Context, hit func(Hit)) error {
	path := z.Path
	if path == "" {
		path = "zmap"
	}
	bin, err := exec.LookPath(path)
	if err != nil {
		return fmt.Errorf("%w: %s not found", ErrNoZMap, path)
	}
	if len(z.Ports) == 0 || len(z.Allow) == 0 {
		return errors.New("discover: zmap: no port or no address to scan")
	}
	dir, err := os.MkdirTemp(z.Dir, "pacswatch-zmap-")
	if err != nil {
		return fmt.Errorf("discover: zmap: %w", err)
	}
	defer os.RemoveAll(dir)
	allow, block := filepath.Join(dir, "allowlist"), filepath.Join(dir, "blocklist")
	if err := writePrefixes(allow, z.Allow); err != nil {
		return err
	}
	if err := writePrefixes(block, z.Block); err != nil {
		return err
	}
	var (
		mu    sync.Mutex // serializes hit
		wg    sync.WaitGroup
		errs  = make([]error, len(z.Ports))
		ctx2  context.Context
		abort context.CancelFunc
	)
	ctx2, abort = context.WithCancel(ctx)
	defer abort()
	for i, port := range z.Ports {
		wg.Go(func() {
			errs[i] = z.runPort(ctx2, bin, port, z.args(port, allow, block), func(h Hit) {
				mu.Lock()
				defer mu.Unlock()
				hit(h)
			})
			if errs[i] != nil {
				abort() // one port failing fails the discovery: stop the others
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}

// runPort runs one zmap process and reads its CSV.
func (z *ZMap) runPort(ctx context.Context, bin string, port uint16, args []string, hit func(Hit)) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr tailWriter
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("discover: zmap on port %d: %w", port, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("discover: zmap on port %d: %w", port, err)
	}
	perr := readZMapCSV(out, port, hit)
	if perr != nil {
		cmd.Process.Kill()
		io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case werr != nil:
		return fmt.Errorf("discover: zmap on port %d failed (%v): %s", port, werr, stderr.fatal())
	case perr != nil:
		return fmt.Errorf("discover: zmap on port %d: %w", port, perr)
	}
	return nil
}

// readZMapCSV reads zmap's CSV (saddr,sport,classification,success,repeat) and calls hit for
// each answer: success 1 is open, classification rst is closed; repeats are left out.
func readZMapCSV(r io.Reader, port uint16, hit func(Hit)) error {
	sc := bufio.NewScanner(r)
	header := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if header {
			header = false
			if strings.HasPrefix(line, "saddr") {
				continue
			}
		}
		f := strings.Split(line, ",")
		if len(f) < 5 {
			return fmt.Errorf("unexpected output line %q", line)
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("unexpected address in output line %q", line)
		}
		p, err := strconv.ParseUint(f[1], 10, 16)
		if err != nil || p == 0 {
			p = uint64(port)
		}
		if f[4] == "1" { // a repeat
			continue
		}
		switch {
		case f[3] == "1":
			hit(Hit{Addr: netip.AddrPortFrom(a.Unmap(), uint16(p))})
		case f[2] == "rst":
			hit(Hit{Addr: netip.AddrPortFrom(a.Unmap(), uint16(p)), Closed: true})
		}
	}
	return sc.Err()
}

// writePrefixes writes one CIDR block a line.
func writePrefixes(path string, ps []netip.Prefix) error {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("discover: zmap: write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// tailWriter keeps the last 8 KiB written to it: a process's stderr.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if n := len(w.buf); n > 8192 {
		w.buf = append(w.buf[:0], w.buf[n-8192:]...)
	}
	return len(p), nil
}

// fatal returns zmap's reason for failing: its last [FATAL] line, else its last line.
func (w *tailWriter) fatal() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(w.buf)), "\n")
	last := ""
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		last = l
		if strings.Contains(l, "[FATAL]") {
			if _, after, ok := strings.Cut(l, "[FATAL]"); ok {
				return strings.TrimSpace(strings.TrimLeft(after, " :")) // the message, without zmap's time stamp
			}
		}
	}
	if last == "" {
		return "no message"
	}
	if len(last) > 200 {
		last = last[:200]
	}
	return last
}
