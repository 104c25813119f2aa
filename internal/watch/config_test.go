package watch_test

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/watch"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("weekly.yaml", `
targets: [127.20.0.0/22]
scan_args: [-p, "11112,4242"]
schedule: {every: 168h}
alerts:
  growth_percent: 25
  webhook: {url: "http://127.0.0.1:9/hook", attempts: 3, backoff: 2s}
`)
	c, err := watch.LoadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "weekly" || c.DB != filepath.Join(dir, "pacswatch.db") || c.State != filepath.Join(dir, "weekly.state.json") ||
		c.Alerts.Growth() != 25 || c.Alerts.Webhook.Attempts != 3 || c.Alerts.Webhook.Backoff != 2*time.Second {
		t.Errorf("config = %+v", c)
	}
	for name, body := range map[string]string{
		"unknown key":     "targets: [a]\nschedule: {every: 1h}\nbogus: 1\n",
		"no targets":      "schedule: {every: 1h}\n",
		"no schedule":     "targets: [a]\n",
		"both schedules":  "targets: [a]\nschedule: {every: 1h, cron: '0 3 * * 1'}\n",
		"bad cron":        "targets: [a]\nschedule: {cron: 'every day'}\n",
		"too often":       "targets: [a]\nschedule: {every: 1ms}\n",
		"own flag":        "targets: [a]\nschedule: {every: 1h}\nscan_args: [--db, other.db]\n",
		"own flag =":      "targets: [a]\nschedule: {every: 1h}\nscan_args: [--resume=true]\n",
		"bad webhook":     "targets: [a]\nschedule: {every: 1h}\nalerts: {webhook: {url: 'ftp://x'}}\n",
		"smtp without to": "targets: [a]\nschedule: {every: 1h}\nalerts: {smtp: {addr: 'm:25', from: a}}\n",
		"negative growth": "targets: [a]\nschedule: {every: 1h}\nalerts: {growth_percent: -1}\n",
	} {
		_, err := watch.LoadConfig(write("bad.yaml", body))
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", name, err)
		}
	}
	if _, err := watch.LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil || strings.Contains(err.Error(), "open ") {
		t.Errorf("missing file: %v", err)
	}
}

func TestCronSchedule(t *testing.T) {
	n, err := watch.Schedule{Cron: "0 3 * * 1"}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC) // a Tuesday
	if got, want := n.Next(from), time.Date(2026, 5, 11, 3, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", from, got, want)
	}
}

// TestSMTP sends a delivery to a fake SMTP server on loopback: one message to every recipient
// with a line per alert, and headers that a hostile value cannot split.
func TestSMTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		say := func(s string) { c.Write([]byte(s + "\r\n")) }
		say("220 fake ESMTP")
		var lines []string
		data := false
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				got <- lines
				return
			}
			l = strings.TrimRight(l, "\r\n")
			lines = append(lines, l)
			switch {
			case data && l == ".":
				data = false
				say("250 queued")
			case data:
			case strings.HasPrefix(l, "EHLO"):
				say("250 fake")
			case l == "DATA":
				data = true
				say("354 go on")
			case l == "QUIT":
				say("221 bye")
				got <- lines
				return
			default:
				say("250 ok")
			}
		}
	}()
	m := &watch.SMTPSink{Addr: ln.Addr().String(), From: "pacswatch@example.org", To: []string{"cert@example.org", "soc@example.org"}}
	d := watch.Delivery{Watch: "w\r\nBcc: evil@example.org", Run: "7", Previous: "6", Alerts: []watch.Alert{
		{Kind: watch.KindFixed, IP: netip.MustParseAddr("192.0.2.1"), TimeToFixSeconds: 86400, Country: "IN", Region: "Goa"},
		{Kind: watch.KindNewExposure, IP: netip.MustParseAddr("192.0.2.2")},
	}}
	d.Alerts[1].New = report.System{Studies: 12}
	if err := m.Send(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	lines := <-got
	all := strings.Join(lines, "\n")
	for _, want := range []string{"MAIL FROM:<pacswatch@example.org>", "RCPT TO:<cert@example.org>", "RCPT TO:<soc@example.org>",
		"fixed 192.0.2.1", "time to fix 24h0m0s", "new-exposure 192.0.2.2", "IN/Goa", "Subject: pacswatch w  Bcc: evil@example.org: 1 new, 0 grew, 1 fixed"} {
		if !strings.Contains(all, want) {
			t.Errorf("the exchange lacks %q:\n%s", want, all)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "Bcc:") {
			t.Errorf("a header was injected: %q", l)
		}
	}
}
