// Package syslog sends messages to a syslog collector in the format of RFC 5424 over TCP
// (RFC 6587) or TLS (RFC 5425), each framed by octet counting ("LEN SP MSG"), as PS3.15 Annex
// A.5 asks of DICOM audit messages. Sending never blocks its caller: messages wait in a bounded
// queue, and those that find it full are dropped and counted. A lost connection is dialled
// again with backoff. It writes to the collector and reads nothing from it.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Facilities and severities used by pacswatch (RFC 5424 §6.2.1).
const (
	FacilityAuthPriv = 10 // security/authorization messages (private)
	SeverityNotice   = 5
	SeverityWarning  = 4
)

// Defaults of Config.
const (
	DefaultQueue   = 4096
	DefaultTimeout = 10 * time.Second
)

// Config configures a Writer.
type Config struct {
	Addr string      // host:port of the collector
	TLS  *tls.Config // nil: plain TCP
	// Hostname and AppName fill in the header; Hostname defaults to os.Hostname's answer
	// (callers pass it), "-" when empty.
	Hostname, AppName string
	// Queue is how many messages may wait; default DefaultQueue.
	Queue int
	// Timeout bounds a dial and a write; default DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time
}

// Writer sends messages to one collector from a goroutine of its own.
type Writer struct {
	cfg     Config
	q       chan []byte
	dropped atomic.Int64
	sent    atomic.Int64
	done    chan struct{}
	cancel  context.CancelFunc
	once    sync.Once
}

// New starts a writer; Close stops it.
func New(cfg Config) (*Writer, error) {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("syslog: %q is not host:port", cfg.Addr)
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{cfg: cfg, q: make(chan []byte, cfg.Queue), done: make(chan struct{}), cancel: cancel}
	go w.loop(ctx)
	return w, nil
}

// Send queues one message with the given facility, severity and MSGID; it reports false when
// the queue was full and the message was dropped.
func (w *Writer) Send(facility, severity int, msgID string, msg []byte) bool {
	frame := Format(facility, severity, w.cfg.Now(), w.cfg.Hostname, w.cfg.AppName, msgID, msg)
	select {
	case w.q <- frame:
		return true
	default:
		w.dropped.Add(1)
		return false
	}
}

// Dropped returns how many messages were dropped; Sent how many were written.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }
func (w *Writer) Sent() int64    { return w.sent.Load() }

// Close sends what is queued, waiting at most the timeout, and stops the writer.
func (w *Writer) Close() error {
	w.once.Do(func() {
		close(w.q)
		t := time.AfterFunc(w.cfg.Timeout, w.cancel)
		<-w.done
		t.Stop()
		w.cancel()
	})
	return nil
}

func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	backoff := time.Duration(0)
	for frame := range w.q {
		for {
			if ctx.Err() != nil {
				w.dropped.Add(1)
				break
			}
			if conn == nil {
				c, err := w.dial(ctx)
				if err != nil {
					backoff = min(max(2*backoff, 100*time.Millisecond), 30*time.Second)
					w.cfg.Logger.Warn("syslog collector unreachable", "addr", w.cfg.Addr, "error", err.Error(), "retry_in", backoff.String())
					select {
					case <-time.After(backoff):
					case <-ctx.Done():
					}
					continue
				}
				conn, backoff = c, 0
			}
			conn.SetWriteDeadline(time.Now().Add(w.cfg.Timeout))
			if _, err := conn.Write(frame); err != nil {
				conn.Close()
				conn = nil
				continue
			}
			w.sent.Add(1)
			break
		}
	}
}

func (w *Writer) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", w.cfg.Addr)
	if err != nil {
		return nil, err
	}
	if w.cfg.TLS == nil {
		return c, nil
	}
	tc := tls.Client(c, w.cfg.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, errors.Join(errors.New("tls handshake"), err)
	}
	return tc, nil
}

// Format returns one RFC 5424 message framed by octet counting (RFC 6587 §3.4.1, RFC 5425
// §4.3): "LEN <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM MSG". Header fields are cut
// to their RFC lengths and any byte outside printable ASCII becomes '_'; MSG is sent as UTF-8
// after a byte order mark (RFC 5424 §6.4).
func Format(facility, severity int, t time.Time, host, app, msgID string, msg []byte) []byte {
	var b strings.Builder
	b.WriteString("<")
	b.WriteString(strconv.Itoa(facility*8 + severity))
	b.WriteString(">1 ")
	b.WriteString(t.UTC().Format("2006-01-02T15:04:05.000000Z"))
	for _, f := range []struct {
		s string
		n int
	}{{host, 255}, {app, 48}, {"-", 128}, {msgID, 32}} {
		b.WriteByte(' ')
		b.WriteString(headerField(f.s, f.n))
	}
	b.WriteString(" - \xEF\xBB\xBF")
	body := b.Len() + len(msg)
	out := make([]byte, 0, body+12)
	out = strconv.AppendInt(out, int64(body), 10)
	out = append(out, ' ')
	out = append(out, b.String()...)
	return append(out, msg...)
}

func headerField(s string, n int) string {
	if s == "" {
		return "-"
	}
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return '_'
		}
		return r
	}, s)
}
