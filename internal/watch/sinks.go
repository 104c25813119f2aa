package watch

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"strings"
	"time"
)

// Delivery is what one run's alerts are sent as: the webhook's JSON body.
type Delivery struct {
	Watch    string  `json:"watch"` // the watch's name
	Run      string  `json:"run"`
	Previous string  `json:"previous_run"`
	Alerts   []Alert `json:"alerts"`
}

// Sink sends deliveries somewhere.
type Sink interface {
	Name() string // "webhook", "smtp": the state and the metrics name sinks by it
	Send(ctx context.Context, d Delivery) error
}

// Webhook POSTs each delivery as JSON, retrying with exponential backoff.
type Webhook struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	// Attempts is how many times a delivery is tried in all; default 6.
	Attempts int `yaml:"attempts"`
	// Backoff is the wait after the first failure, doubled after each one up to MaxBackoff;
	// defaults 1 s and 5 min.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Timeout bounds each attempt; default 30 s.
	Timeout time.Duration `yaml:"timeout"`

	Client *http.Client `yaml:"-"` // nil: one that follows no redirect
}

var _ Sink = (*Webhook)(nil)

// Name implements Sink.
func (w *Webhook) Name() string { return "webhook" }

// maxBatch caps the alerts of one POST: a large change goes in several.
const maxBatch = 1000

// errPermanent marks an answer that retrying does not change (a 4xx but 408 and 429).
var errPermanent = errors.New("watch: webhook refused the delivery")

// Send implements Sink: each batch of at most maxBatch alerts is POSTed until it is accepted
// (2xx) or Attempts run out. A receiver sees the same alert again only if an attempt reached it
// but its answer did not come back; the alert IDs and the Idempotency-Key header let it drop
// those.
func (w *Webhook) Send(ctx context.Context, d Delivery) error {
	alerts := d.Alerts
	for part := 0; part == 0 || len(alerts) > 0; part++ {
		n := min(len(alerts), maxBatch)
		batch := d
		batch.Alerts = alerts[:n:n]
		alerts = alerts[n:]
		body, err := json.Marshal(batch)
		if err != nil {
			return err
		}
		if err := w.post(ctx, body, fmt.Sprintf("%s-%s-%d", d.Watch, d.Run, part)); err != nil {
			return err
		}
	}
	return nil
}

func (w *Webhook) post(ctx context.Context, body []byte, key string) error {
	attempts, wait, most, timeout := w.Attempts, w.Backoff, w.MaxBackoff, w.Timeout
	if attempts == 0 {
		attempts = 6
	}
	if wait == 0 {
		wait = time.Second
	}
	if most == 0 {
		most = 5 * time.Minute
	}
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	client := w.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	var err error
	for try := 1; ; try++ {
		err = w.attempt(ctx, client, body, key, timeout)
		if err == nil || errors.Is(err, errPermanent) || try >= attempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, most)
	}
	if err != nil {
		return fmt.Errorf("webhook %s: %w", redact(w.URL), err)
	}
	return nil
}

func (w *Webhook) attempt(ctx context.Context, client *http.Client, body []byte, key string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return errPermanent
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pacswatch-watch")
	req.Header.Set("Idempotency-Key", key)
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // *url.Error repeats the URL, and its query could hold a secret
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return fmt.Errorf("%w: answered %d", errPermanent, resp.StatusCode)
}

// redact shows a URL without its user information and query.
func redact(raw string) string {
	u, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		return "(bad url)"
	}
	return u.URL.Scheme + "://" + u.URL.Host + u.URL.Path
}

// SMTPSink mails a plain-text summary of each delivery.
type SMTPSink struct {
	Addr         string   `yaml:"addr"` // host:port of the submission server
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	Username     string   `yaml:"username"`      // PLAIN authentication, over TLS only
	PasswordFile string   `yaml:"password_file"` // first line is the password
	// Timeout bounds the whole exchange; default 60 s.
	Timeout time.Duration `yaml:"timeout"`
}

var _ Sink = (*SMTPSink)(nil)

// Name implements Sink.
func (m *SMTPSink) Name() string { return "smtp" }

// Send implements Sink: STARTTLS when the server offers it, authentication when configured.
func (m *SMTPSink) Send(ctx context.Context, d Delivery) error {
	timeout := m.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.Addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	host, _, _ := net.SplitHostPort(m.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", m.Addr, err)
	}
	defer c.Close()
	if err := m.exchange(c, host, d); err != nil {
		return fmt.Errorf("smtp %s: %w", m.Addr, err)
	}
	return nil
}

func (m *SMTPSink) exchange(c *smtp.Client, host string, d Delivery) error {
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if m.Username != "" {
		b, err := os.ReadFile(m.PasswordFile)
		if err != nil {
			return errors.New("read the password file")
		}
		pass, _, _ := strings.Cut(string(b), "\n")
		if err := c.Auth(smtp.PlainAuth("", m.Username, strings.TrimSpace(pass), host)); err != nil {
			return err
		}
	}
	if err := c.Mail(m.From); err != nil {
		return err
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(wc, mailBody(m.From, m.To, d)); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// mailBody is the message: headers and one line per alert (addresses and counts only).
func mailBody(from string, to []string, d Delivery) string {
	var b strings.Builder
	counts := map[Kind]int{}
	for _, a := range d.Alerts {
		counts[a.Kind]++
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: pacswatch %s: %d new, %d grew, %d fixed\r\n", oneLine(from), oneLine(strings.Join(to, ", ")),
		oneLine(d.Watch), counts[KindNewExposure], counts[KindGrowth], counts[KindFixed])
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "Run %s compared with run %s.\r\n\r\n", oneLine(d.Run), oneLine(d.Previous))
	for _, a := range d.Alerts {
		fmt.Fprintf(&b, "%s %s: %s -> %s, studies %d -> %d", a.Kind, a.IP, a.Old.Level, a.New.Level, a.Old.Studies, a.New.Studies)
		if a.Country != "" {
			fmt.Fprintf(&b, ", %s", oneLine(strings.TrimSuffix(a.Country+"/"+a.Region, "/")))
		}
		if a.Kind == KindFixed && a.TimeToFixSeconds > 0 {
			fmt.Fprintf(&b, ", time to fix %s", time.Duration(a.TimeToFixSeconds)*time.Second)
		}
		b.WriteString("\r\n")
	}
	return b.String()
}

// oneLine keeps a value on its header or body line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
