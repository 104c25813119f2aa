// Command rawconnect measures the raw TCP connect rate of this machine to loopback addresses: the
// ceiling any scanner on it can reach. It dials every address of a loopback CIDR on one port with
// bounded concurrency, closes each connection at once, and prints the rate and its peak RSS.
//
//	go run ./bench/rawconnect -cidr 127.2.0.0/16 -port 9 -concurrency 1000
//
// It refuses any CIDR outside 127.0.0.0/8 and ::1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	cidr := flag.String("cidr", "127.2.0.0/16", "loopback CIDR to dial")
	port := flag.Int("port", 9, "port to dial")
	conc := flag.Int("concurrency", 1000, "connections in flight")
	timeout := flag.Duration("timeout", 2*time.Second, "connect timeout")
	flag.Parse()
	pfx, err := netip.ParsePrefix(*cidr)
	if err != nil || !pfx.Addr().IsLoopback() || (pfx.Addr().Is4() && pfx.Bits() < 8) {
		fmt.Fprintln(os.Stderr, "rawconnect: -cidr must be inside 127.0.0.0/8 (or ::1/128)")
		os.Exit(2)
	}
	pfx = pfx.Masked()
	addrs := make(chan netip.Addr, *conc)
	var open, refused, other atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Go(func() {
			d := net.Dialer{Timeout: *timeout}
			for a := range addrs {
				c, err := d.DialContext(context.Background(), "tcp", netip.AddrPortFrom(a, uint16(*port)).String())
				switch {
				case err == nil:
					open.Add(1)
					c.Close()
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	n := 0
	for a := pfx.Addr(); pfx.Contains(a); a = a.Next() {
		addrs <- a
		n++
	}
	close(addrs)
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("rawconnect: %d targets in %.2fs = %.0f connects/s (open %d, refused %d, other %d), concurrency %d, peak RSS %s\n",
		n, el.Seconds(), float64(n)/el.Seconds(), open.Load(), refused.Load(), other.Load(), *conc, peakRSS())
}

// peakRSS reads VmHWM from /proc/self/status.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
