package syslog

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	ts := time.Date(2026, 12, 6, 3, 4, 5, 123456000, time.UTC)
	got := string(Format(FacilityAuthPriv, SeverityNotice, ts, "guard host", "pacswatch", "DICOM+RFC3881", []byte("<x/>")))
	want := "<85>1 2026-12-06T03:04:05.123456Z guard_host pacswatch - DICOM+RFC3881 - \xEF\xBB\xBF<x/>"
	if got != strconv.Itoa(len(want))+" "+want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	if got := string(Format(1, 2, ts, "", "", "", nil)); !strings.HasSuffix(got, "<10>1 2026-12-06T03:04:05.123456Z - - - - - \xEF\xBB\xBF") {
		t.Errorf("empty fields: %q", got)
	}
}

func TestWriterSendsAndDrops(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- ""
			return
		}
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	w, err := New(Config{Addr: l.Addr().String(), AppName: "t", Hostname: "h", Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for range 100 {
		if w.Send(FacilityAuthPriv, SeverityNotice, "M", []byte("hello")) {
			sent++
		}
	}
	w.Close()
	l.Close()
	out := <-got
	if n := strings.Count(out, "hello"); int64(n) != w.Sent() || n != sent || w.Dropped() != int64(100-sent) || sent < 1 {
		t.Errorf("collector got %d messages, writer says %d sent and %d dropped of 100 (%d queued)", n, w.Sent(), w.Dropped(), sent)
	}
	if _, err := New(Config{Addr: "no-port"}); err == nil {
		t.Error("an address without a port is accepted")
	}
}
