package ul_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// script runs peer on one end of a net.Pipe and returns the other end.
func script(t *testing.T, peer func(conn net.Conn)) net.Conn {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.Close()
		peer(s)
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

// readRaw reads one PDU's bytes, header included.
func readRaw(conn net.Conn) ([]byte, error) {
	h := make([]byte, ul.HeaderLen)
	if _, err := io.ReadFull(conn, h); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[2:])
	if n > 1<<20 {
		return nil, fmt.Errorf("pdu of %d bytes", n)
	}
	b := make([]byte, ul.HeaderLen+int(n))
	copy(b, h)
	_, err := io.ReadFull(conn, b[ul.HeaderLen:])
	return b, err
}

// expectClosed checks that the other end closes conn promptly.
func expectClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("peer read after reply: %v, want io.EOF (socket closed)", err)
	}
}

// pair establishes an association over a net.Pipe.
func pair(t *testing.T, ccfg ul.Config, scfg ul.ServerConfig) (client, server *ul.Assoc) {
	t.Helper()
	c, s := net.Pipe()
	ctx := testCtx(t, 5*time.Second)
	type result struct {
		a   *ul.Assoc
		err error
	}
	ch := make(chan result, 1)
	go func() {
		a, err := ul.Accept(ctx, s, scfg)
		ch <- result{a, err}
	}()
	client, err := ul.NewClient(ctx, c, ccfg)
	r := <-ch
	if err != nil || r.err != nil {
		t.Fatalf("NewClient: %v; Accept: %v", err, r.err)
	}
	t.Cleanup(func() {
		client.Close()
		r.a.Close()
	})
	return client, r.a
}

// async runs f in a goroutine and returns its error on a channel.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func TestNewClientVerification(t *testing.T) {
	conn := script(t, func(conn net.Conn) {
		got, err := readRaw(conn)
		if err != nil {
			t.Errorf("read RQ: %v", err)
			return
		}
		if want := verificationRQ(); !bytes.Equal(got, want) {
			t.Errorf("A-ASSOCIATE-RQ sent:\n got %x\nwant %x", got, want)
		}
		conn.Write(dcmtkAC())
		got, err = readRaw(conn)
		if want := (ul.AReleaseRQ{}).Append(nil); err != nil || !bytes.Equal(got, want) {
			t.Errorf("release: got %x, %v; want %x", got, err, want)
		}
		conn.Write(ul.AReleaseRP{}.Append(nil))
		expectClosed(t, conn)
	})
	ctx := testCtx(t, 5*time.Second)
	a, err := ul.NewClient(ctx, conn, verificationConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := ul.Info{
		CalledAE:                   "ANY-SCP",
		CallingAE:                  "PACSWATCH",
		PeerImplementationClassUID: "1.2.276.0.7230010.3.0.3.6.7",
		PeerImplementationVersion:  "OFFIS_DCMTK_367",
		PeerMaxPDU:                 16384,
		Accepted:                   []ul.Context{{ID: 1, AbstractSyntax: verification, TransferSyntax: explicitLE}},
	}
	if got := a.Info(); !reflect.DeepEqual(got, want) {
		t.Errorf("Info() =\n%+v, want\n%+v", got, want)
	}
	if got, ok := a.Context(verification); !ok || got.ID != 1 {
		t.Errorf("Context(verification) = %+v, %v; want ID 1", got, ok)
	}
	if _, ok := a.Context(studyFind); ok {
		t.Errorf("Context(studyFind) found, want none")
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("Release: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

func TestNewClientNotAccepted(t *testing.T) {
	acWith := func(pcs ...ul.PresentationContextAC) []byte {
		ac := &ul.AAssociateAC{ProtocolVersion: 1, ApplicationContext: ul.ApplicationContext, PresentationContexts: pcs}
		return ac.Append(nil)
	}
	shortAC := dcmtkAC()
	shortAC[5] = 72 // the PDU ends inside the application context item
	tests := []struct {
		name   string
		reply  []byte
		want   error
		wantRJ *ul.AAssociateRJ
		wantAB *ul.AAbort
	}{
		{"rejected, called AE", ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}.Append(nil), nil, &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}, nil},
		{"rejected, transient", ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1}.Append(nil), nil, &ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1}, nil},
		{"aborted", ul.AAbort{Source: 2, Reason: 2}.Append(nil), nil, nil, &ul.AAbort{Source: 2, Reason: 2}},
		{"release reply", ul.AReleaseRP{}.Append(nil), ul.ErrUnexpectedPDU, nil, nil},
		{"request", verificationRQ(), ul.ErrUnexpectedPDU, nil, nil},
		{"not DICOM", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), ul.ErrUnknownPDUType, nil, nil},
		{"huge length", []byte{0x02, 0x00, 0xFF, 0xFF, 0xFF, 0xF0}, ul.ErrPDUTooLarge, nil, nil},
		{"length shorter than content", shortAC, ul.ErrMalformed, nil, nil},
		{"truncated header then EOF", []byte{0x02, 0x00, 0x00}, io.ErrUnexpectedEOF, nil, nil},
		{"even context ID", acWith(ul.PresentationContextAC{ID: 2, TransferSyntax: implicitLE}), ul.ErrMalformed, nil, nil},
		{"context not proposed", acWith(ul.PresentationContextAC{ID: 3, TransferSyntax: implicitLE}), ul.ErrMalformed, nil, nil},
		{"context answered twice", acWith(ul.PresentationContextAC{ID: 1, TransferSyntax: implicitLE},
			ul.PresentationContextAC{ID: 1, TransferSyntax: implicitLE}), ul.ErrMalformed, nil, nil},
		{"transfer syntax not proposed", acWith(ul.PresentationContextAC{ID: 1, TransferSyntax: "1.2.840.10008.1.2.2"}), ul.ErrMalformed, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := script(t, func(conn net.Conn) {
				if _, err := readRaw(conn); err != nil {
					t.Errorf("read RQ: %v", err)
					return
				}
				conn.Write(tt.reply)
				if tt.want == io.ErrUnexpectedEOF {
					return // hang up
				}
				expectClosed(t, conn)
			})
			a, err := ul.NewClient(testCtx(t, 5*time.Second), conn, verificationConfig())
			if a != nil {
				t.Fatalf("NewClient returned an association, err %v", err)
			}
			var rj *ul.RejectedError
			var ab *ul.AbortedError
			switch {
			case tt.wantRJ != nil:
				if !errors.As(err, &rj) || rj.RJ != *tt.wantRJ {
					t.Errorf("err = %v, want RejectedError %+v", err, *tt.wantRJ)
				}
			case tt.wantAB != nil:
				if !errors.As(err, &ab) || ab.Abort != *tt.wantAB {
					t.Errorf("err = %v, want AbortedError %+v", err, *tt.wantAB)
				}
			case !errors.Is(err, tt.want):
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewClientRefusedContexts(t *testing.T) {
	ac := &ul.AAssociateAC{ProtocolVersion: 1, ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextAC{{ID: 1, Result: 9, TransferSyntax: "garbage"}}}
	conn := script(t, func(conn net.Conn) {
		readRaw(conn)
		conn.Write(ac.Append(nil))
		readRaw(conn) // A-RELEASE-RQ
		conn.Write(ul.AReleaseRP{}.Append(nil))
	})
	cfg := verificationConfig()
	cfg.Contexts = append(cfg.Contexts, ul.ContextProposal{AbstractSyntax: studyFind, TransferSyntaxes: []string{implicitLE}})
	ctx := testCtx(t, 5*time.Second)
	a, err := ul.NewClient(ctx, conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []ul.RefusedContext{
		{ID: 1, AbstractSyntax: verification, Result: ul.PCResult(9)},
		{ID: 3, AbstractSyntax: studyFind, Result: ul.PCNoReason}, // not answered
	}
	info := a.Info()
	if !reflect.DeepEqual(info.Refused, want) || len(info.Accepted) != 0 {
		t.Errorf("Refused = %+v, Accepted = %+v; want %+v and none", info.Refused, info.Accepted, want)
	}
	if got := info.Refused[0].Result.String(); got != "unknown(9)" {
		t.Errorf("Result.String() = %q, want unknown(9)", got)
	}
	if err := a.Send(ctx, 1, []byte{1}, nil); !errors.Is(err, ul.ErrProtocol) {
		t.Errorf("Send on a refused context: %v, want ErrProtocol", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("Release: %v", err)
	}
}

func TestNewClientBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		change func(*ul.Config)
	}{
		{"AE of 17", func(c *ul.Config) { c.CalledAE = "ABCDEFGHIJKLMNOPQ" }},
		{"no called AE", func(c *ul.Config) { c.CalledAE = "" }},
		{"no contexts", func(c *ul.Config) { c.Contexts = nil }},
		{"129 contexts", func(c *ul.Config) { c.Contexts = make([]ul.ContextProposal, 129) }},
		{"no transfer syntax", func(c *ul.Config) { c.Contexts[0].TransferSyntaxes = nil }},
		{"version name of 17", func(c *ul.Config) { c.ImplementationVersionName = "ABCDEFGHIJKLMNOPQ" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := script(t, func(conn net.Conn) { expectClosed(t, conn) })
			cfg := verificationConfig()
			tt.change(&cfg)
			if a, err := ul.NewClient(testCtx(t, 5*time.Second), conn, cfg); err == nil {
				a.Close()
				t.Errorf("NewClient succeeded, want an error")
			}
		})
	}
}

func TestMaxContexts(t *testing.T) {
	cfg := verificationConfig()
	cfg.Contexts = nil
	for range 128 {
		cfg.Contexts = append(cfg.Contexts, ul.ContextProposal{AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE}})
	}
	client, server := pair(t, cfg, ul.ServerConfig{})
	info := client.Info()
	if got := len(info.Accepted); got != 128 {
		t.Fatalf("%d contexts accepted, want 128", got)
	}
	for i, c := range info.Accepted {
		if want := byte(2*i + 1); c.ID != want {
			t.Errorf("context %d has ID %d, want %d", i, c.ID, want)
		}
	}
	if got := len(server.Info().Accepted); got != 128 {
		t.Errorf("server: %d contexts accepted, want 128", got)
	}
}

// message returns n bytes of a recognisable pattern.
func message(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func TestConversation(t *testing.T) {
	ctx := testCtx(t, 5*time.Second)
	ccfg := threeConfig()
	ccfg.MaxPDU = 64
	client, server := pair(t, ccfg, ul.ServerConfig{MaxPDU: 64, Decide: func(rq *ul.AAssociateRQ) (*ul.AAssociateAC, *ul.AAssociateRJ) {
		return ul.DefaultAC(rq, func(as string) bool { return as != studyGet }, nil), nil
	}})
	if got := client.Info().PeerMaxPDU; got != 64 {
		t.Errorf("client: PeerMaxPDU = %d, want 64", got)
	}
	if got := server.Info().PeerMaxPDU; got != 64 {
		t.Errorf("server: PeerMaxPDU = %d, want 64", got)
	}
	if got, want := server.RQ().CallingAE, "PACSWATCH"; got != want {
		t.Errorf("server: RQ().CallingAE = %q, want %q", got, want)
	}
	if got, want := server.Info().PeerImplementationClassUID, ul.ImplementationClassUID; got != want {
		t.Errorf("server: PeerImplementationClassUID = %q, want %q", got, want)
	}
	if got, want := client.Info().Refused, []ul.RefusedContext{{ID: 5, AbstractSyntax: studyGet, Result: ul.PCAbstractSyntaxNotSupported}}; !reflect.DeepEqual(got, want) {
		t.Errorf("client: Refused = %+v, want %+v", got, want)
	}

	// Client to server: a command and a data set, each several fragments.
	cmd, data := message(150, 1), message(300, 7)
	sent := async(func() error { return client.Send(ctx, 3, cmd, data) })
	id, gotCmd, err := server.ReadCommand(ctx)
	if err != nil || id != 3 || !bytes.Equal(gotCmd, cmd) {
		t.Fatalf("server ReadCommand = %d, %d bytes, %v; want 3, %d bytes", id, len(gotCmd), err, len(cmd))
	}
	gotData, err := server.ReadData(ctx)
	if err != nil || !bytes.Equal(gotData, data) {
		t.Fatalf("server ReadData = %d bytes, %v; want %d bytes", len(gotData), err, len(data))
	}
	if err := <-sent; err != nil {
		t.Fatalf("client Send: %v", err)
	}

	// Server to client: a command alone, then a command and a streamed data set.
	sent = async(func() error {
		if err := server.Send(ctx, 3, message(10, 2), nil); err != nil {
			return err
		}
		return server.Send(ctx, 3, cmd, data)
	})
	if id, got, err := client.ReadCommand(ctx); err != nil || id != 3 || !bytes.Equal(got, message(10, 2)) {
		t.Fatalf("client ReadCommand = %d, %x, %v", id, got, err)
	}
	if _, got, err := client.ReadCommand(ctx); err != nil || !bytes.Equal(got, cmd) {
		t.Fatalf("client ReadCommand = %x, %v", got, err)
	}
	got, err := io.ReadAll(client.DataReader(ctx))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("client DataReader = %d bytes, %v; want %d bytes", len(got), err, len(data))
	}
	if err := <-sent; err != nil {
		t.Fatalf("server Send: %v", err)
	}

	// Release by the requestor.
	released := async(func() error { return client.Release(ctx) })
	if _, _, err := server.ReadCommand(ctx); !errors.Is(err, ul.ErrReleaseRequested) {
		t.Fatalf("server ReadCommand = %v, want ErrReleaseRequested", err)
	}
	if err := server.ReplyRelease(ctx); err != nil {
		t.Errorf("ReplyRelease: %v", err)
	}
	if err := <-released; err != nil {
		t.Errorf("client Release: %v", err)
	}
}

func TestReleaseByAcceptor(t *testing.T) {
	ctx := testCtx(t, 5*time.Second)
	client, server := pair(t, verificationConfig(), ul.ServerConfig{})
	if err := client.ReplyRelease(ctx); !errors.Is(err, ul.ErrProtocol) {
		t.Errorf("ReplyRelease without a request: %v, want ErrProtocol", err)
	}
	released := async(func() error { return server.Release(ctx) })
	if _, _, err := client.ReadCommand(ctx); !errors.Is(err, ul.ErrReleaseRequested) {
		t.Fatalf("client ReadCommand = %v, want ErrReleaseRequested", err)
	}
	if err := client.ReplyRelease(ctx); err != nil {
		t.Errorf("ReplyRelease: %v", err)
	}
	if err := <-released; err != nil {
		t.Errorf("server Release: %v", err)
	}
}

func TestAbort(t *testing.T) {
	ctx := testCtx(t, 5*time.Second)
	client, server := pair(t, verificationConfig(), ul.ServerConfig{})
	aborted := async(client.Abort)
	_, _, err := server.ReadCommand(ctx)
	var ab *ul.AbortedError
	if !errors.As(err, &ab) || ab.Abort != (ul.AAbort{}) || ab.Abort.Meaning() != "service-user" {
		t.Errorf("server ReadCommand = %v, want AbortedError from the service user", err)
	}
	if err := <-aborted; err != nil {
		t.Errorf("Abort: %v", err)
	}
	for name, f := range map[string]func() error{
		"client Abort":    client.Abort,
		"client Close":    client.Close,
		"client Release":  func() error { return client.Release(ctx) },
		"server Abort":    server.Abort,
		"server Release":  func() error { return server.Release(ctx) },
		"server Close":    server.Close,
		"server Close #2": server.Close,
	} {
		if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after abort: %v", name, err)
		}
	}
	if err := client.Send(ctx, 1, []byte{1}, nil); err == nil {
		t.Errorf("Send after Abort succeeded")
	}
}

func TestReleaseCollision(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx := testCtx(t, 5*time.Second)
	srv := make(chan *ul.Assoc, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			srv <- nil
			return
		}
		a, _ := ul.Accept(ctx, conn, ul.ServerConfig{})
		srv <- a
	}()
	client, err := ul.Dial(ctx, ln.Addr().String(), verificationConfig())
	if err != nil {
		t.Fatal(err)
	}
	server := <-srv
	if server == nil {
		t.Fatal("Accept failed")
	}
	a, b := async(func() error { return client.Release(ctx) }), async(func() error { return server.Release(ctx) })
	if err := <-a; err != nil {
		t.Errorf("requestor Release: %v", err)
	}
	if err := <-b; err != nil {
		t.Errorf("acceptor Release: %v", err)
	}
}

func TestReleaseReplies(t *testing.T) {
	tests := []struct {
		name  string
		reply []byte
		want  error // nil: success
	}{
		{"data in flight", cat(pdata(1, cmdLast, []byte{1, 2}), pdata(1, dataLast, nil), ul.AReleaseRP{}.Append(nil)), nil},
		{"abort", ul.AAbort{Source: 2}.Append(nil), &ul.AbortedError{}},
		{"association", dcmtkAC(), ul.ErrUnexpectedPDU},
		{"endless data", bytes.Repeat(pdata(1, dataMore, nil), 300), ul.ErrProtocol},
		{"silence", nil, os.ErrDeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := script(t, func(conn net.Conn) {
				readRaw(conn)
				conn.Write(dcmtkAC())
				readRaw(conn)
				conn.Write(tt.reply)
				io.Copy(io.Discard, conn)
			})
			a, err := ul.NewClient(testCtx(t, 5*time.Second), conn, verificationConfig())
			if err != nil {
				t.Fatal(err)
			}
			err = a.Release(testCtx(t, 300*time.Millisecond))
			var ab *ul.AbortedError
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("Release = %v, want nil", err)
			case errors.As(tt.want, &ab):
				if !errors.As(err, &ab) {
					t.Errorf("Release = %v, want an AbortedError", err)
				}
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("Release = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestFragmentation checks every byte the requestor sends for one message:
// one PDV per P-DATA-TF, sized to the peer's maximum length (or to ours when
// the peer has none).
func TestFragmentation(t *testing.T) {
	tests := []struct {
		name          string
		peerMax       uint32
		ourMax        uint32
		cmdLen        int
		dataLen       int
		wantFlags     []byte
		wantFragments []int
	}{
		{"peer 64", 64, 0, 100, 200, []byte{cmdMore, cmdLast, dataMore, dataMore, dataMore, dataLast}, []int{58, 42, 58, 58, 58, 26}},
		{"exact fit", 64, 0, 58, 116, []byte{cmdLast, dataMore, dataLast}, []int{58, 58, 58}},
		{"no data set", 64, 0, 10, 0, []byte{cmdLast}, []int{10}},
		{"empty command", 64, 0, 0, 0, []byte{cmdLast}, []int{0}},
		{"peer unlimited", 0, 100, 100, 100, []byte{cmdMore, cmdLast, dataMore, dataLast}, []int{94, 6, 94, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, data := message(tt.cmdLen, 3), message(tt.dataLen, 5)
			conn := script(t, func(conn net.Conn) {
				readRaw(conn)
				conn.Write(threeAC(tt.peerMax))
				var flags []byte
				var sizes []int
				var gotCmd, gotData []byte
				for len(flags) < len(tt.wantFlags) {
					b, err := readRaw(conn)
					if err != nil {
						t.Errorf("read P-DATA-TF: %v", err)
						return
					}
					if b[0] != byte(ul.TypePDataTF) || len(b) < 12 {
						t.Errorf("got PDU %x, want P-DATA-TF", b)
						return
					}
					if pduLen, pdvLen := binary.BigEndian.Uint32(b[2:]), binary.BigEndian.Uint32(b[6:]); pduLen != pdvLen+4 {
						t.Errorf("PDU length %d, PDV length %d: want one PDV", pduLen, pdvLen)
					}
					if limit := max(tt.peerMax, tt.ourMax); len(b)-6 > int(limit) {
						t.Errorf("P-DATA-TF variable field of %d bytes, limit %d", len(b)-6, limit)
					}
					if b[10] != 3 {
						t.Errorf("PDV on context %d, want 3", b[10])
					}
					flags = append(flags, b[11])
					sizes = append(sizes, len(b)-12)
					if b[11]&1 != 0 {
						gotCmd = append(gotCmd, b[12:]...)
					} else {
						gotData = append(gotData, b[12:]...)
					}
				}
				if !bytes.Equal(flags, tt.wantFlags) || !reflect.DeepEqual(sizes, tt.wantFragments) {
					t.Errorf("fragments: flags %x sizes %v, want %x %v", flags, sizes, tt.wantFlags, tt.wantFragments)
				}
				if !bytes.Equal(gotCmd, cmd) || !bytes.Equal(gotData, data) {
					t.Errorf("reassembled %d+%d bytes differ from %d+%d sent", len(gotCmd), len(gotData), len(cmd), len(data))
				}
			})
			cfg := threeConfig()
			cfg.MaxPDU = tt.ourMax
			ctx := testCtx(t, 5*time.Second)
			a, err := ul.NewClient(ctx, conn, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := a.Send(ctx, 3, cmd, data); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
}

// TestSendOneWrite checks that a command and a data set that each fit one PDV go out in one write
// (a server streaming C-FIND responses makes one system call per response, not two), byte for
// byte the two P-DATA-TFs TestFragmentation checks.
func TestSendOneWrite(t *testing.T) {
	cmd, data := message(10, 3), message(20, 5)
	want := cat(pdata(3, cmdLast, cmd), pdata(3, dataLast, data))
	conn := script(t, func(conn net.Conn) {
		readRaw(conn)
		conn.Write(threeAC(0))
		buf := make([]byte, 2*len(want))
		n, err := conn.Read(buf) // a net.Pipe read returns at most one write
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Errorf("first read: %x (%v), want %x in one write", buf[:n], err, want)
		}
	})
	ctx := testCtx(t, 5*time.Second)
	a, err := ul.NewClient(ctx, conn, threeConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Send(ctx, 3, cmd, data); err != nil {
		t.Errorf("Send: %v", err)
	}
}

func TestSendTinyPeerMax(t *testing.T) {
	conn := newMemConn(threeAC(6))
	ctx := testCtx(t, 5*time.Second)
	a, err := ul.NewClient(ctx, conn, threeConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctx, 1, []byte{1}, nil); !errors.Is(err, ul.ErrProtocol) {
		t.Errorf("Send with a peer maximum of 6: %v, want ErrProtocol", err)
	}
}

// TestRead plays P-DATA-TF streams to a requestor (contexts 1 and 3
// accepted, 5 refused, MaxMessage 1024) and runs read operations on it.
func TestRead(t *testing.T) {
	big := message(400, 0)
	tests := []struct {
		name    string
		stream  []byte
		ops     string // c: ReadCommand, d: ReadData, r: DataReader to EOF, p: DataReader 1 byte
		want    []string
		wantErr error // of the last operation; nil: success
	}{
		{"command", pdata(1, cmdLast, []byte("C")), "c", []string{"c1 C"}, nil},
		{"command and data", cat(pdata(3, cmdMore, []byte("C1")), pdata(3, cmdLast, []byte("C2")), pdata(3, dataMore, []byte("D1")), pdata(3, dataLast, []byte("D2"))),
			"cd", []string{"c3 C1C2", "d D1D2"}, nil},
		{"PDVs sharing a PDU", pduOf(ul.TypePDataTF, (&ul.PDataTF{PDVs: []ul.PDV{
			{ContextID: 1, Command: true, Last: true, Data: []byte("C")},
			{ContextID: 1, Last: true, Data: []byte("D")},
			{ContextID: 3, Command: true, Last: true, Data: []byte("E")},
		}}).Append(nil)[6:]), "cdc", []string{"c1 C", "d D", "c3 E"}, nil},
		{"empty data set", cat(pdata(1, cmdLast, []byte("C")), pdata(1, dataLast, nil)), "cd", []string{"c1 C", "d "}, nil},
		{"streamed data", cat(pdata(1, cmdLast, []byte("C")), pdata(1, dataMore, []byte("D1")), pdata(1, dataLast, []byte("D2"))),
			"cr", []string{"c1 C", "r D1D2"}, nil},
		{"partly read data set discarded", cat(pdata(1, cmdLast, []byte("C")), pdata(1, dataMore, []byte("D1")), pdata(1, dataLast, []byte("D2")),
			pdata(1, cmdLast, []byte("E"))), "cpc", []string{"c1 C", "p D", "c1 E"}, nil},
		{"data at limit", cat(pdata(1, cmdLast, nil), pdata(1, dataMore, big), pdata(1, dataMore, big), pdata(1, dataLast, big[:224])),
			"cd", []string{"c1 ", fmt.Sprintf("d %s", cat(big, big, big[:224]))}, nil},

		{"data where a command is expected", pdata(1, dataLast, []byte("D")), "c", nil, ul.ErrProtocol},
		{"command on a refused context", pdata(5, cmdLast, []byte("C")), "c", nil, ul.ErrProtocol},
		{"command on an unknown context", pdata(0, cmdLast, []byte("C")), "c", nil, ul.ErrProtocol},
		{"command fragments on two contexts", cat(pdata(1, cmdMore, []byte("C")), pdata(3, cmdLast, []byte("C"))), "c", nil, ul.ErrProtocol},
		{"data set on another context", cat(pdata(1, cmdLast, []byte("C")), pdata(3, dataLast, []byte("D"))), "cd", []string{"c1 C"}, ul.ErrProtocol},
		{"command inside a data set", cat(pdata(1, cmdLast, []byte("C")), pdata(1, dataMore, []byte("D")), pdata(1, cmdLast, []byte("C"))),
			"cd", []string{"c1 C"}, ul.ErrProtocol},
		{"command where data is expected", cat(pdata(1, cmdLast, []byte("C")), pdata(1, cmdLast, []byte("E"))), "cd", []string{"c1 C"}, ul.ErrProtocol},
		{"data without command", pdata(1, dataLast, []byte("D")), "d", nil, ul.ErrProtocol},
		{"stream without command", pdata(1, dataLast, []byte("D")), "r", nil, ul.ErrProtocol},
		{"data set read twice", cat(pdata(1, cmdLast, []byte("C")), pdata(1, dataLast, []byte("D"))), "cdd", []string{"c1 C", "d D"}, ul.ErrProtocol},
		{"command over MaxMessage", cat(pdata(1, cmdMore, big), pdata(1, cmdMore, big), pdata(1, cmdLast, big)), "c", nil, ul.ErrMessageTooLarge},
		{"data over MaxMessage", cat(pdata(1, cmdLast, nil), pdata(1, dataMore, big), pdata(1, dataMore, big), pdata(1, dataLast, big[:225])),
			"cd", []string{"c1 "}, ul.ErrMessageTooLarge},
		{"abort", ul.AAbort{Source: 2, Reason: 1}.Append(nil), "c", nil, &ul.AbortedError{}},
		{"abort inside a data set", cat(pdata(1, cmdLast, nil), pdata(1, dataMore, nil), ul.AAbort{}.Append(nil)), "cd", []string{"c1 "}, &ul.AbortedError{}},
		{"release", ul.AReleaseRQ{}.Append(nil), "c", nil, ul.ErrReleaseRequested},
		{"association again", dcmtkAC(), "c", nil, ul.ErrUnexpectedPDU},
		{"unknown PDU", []byte{0x09, 0, 0, 0, 0, 0}, "c", nil, ul.ErrUnknownPDUType},
		{"PDU over MaxReadPDU", []byte{0x04, 0, 0x00, 0x20, 0x00, 0x00}, "c", nil, ul.ErrPDUTooLarge},
		{"EOF between PDUs", pdata(1, cmdMore, []byte("C")), "c", nil, io.EOF},
		{"EOF inside a PDU", pdata(1, cmdLast, []byte("C"))[:9], "c", nil, io.ErrUnexpectedEOF},
		{"EOF inside a data set", cat(pdata(1, cmdLast, nil), pdata(1, dataMore, []byte("D"))), "cr", []string{"c1 "}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t, 5*time.Second)
			a, err := ul.NewClient(ctx, newMemConn(cat(threeAC(0), tt.stream)), threeConfig())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, op := range tt.ops {
				var s string
				switch op {
				case 'c':
					var id byte
					var cmd []byte
					id, cmd, err = a.ReadCommand(ctx)
					s = fmt.Sprintf("c%d %s", id, cmd)
				case 'd':
					var data []byte
					data, err = a.ReadData(ctx)
					s = fmt.Sprintf("d %s", data)
				case 'r':
					var data []byte
					data, err = io.ReadAll(a.DataReader(ctx))
					s = fmt.Sprintf("r %s", data)
				case 'p':
					b := make([]byte, 1)
					_, err = a.DataReader(ctx).Read(b)
					s = fmt.Sprintf("p %s", b)
				}
				if err != nil {
					if i != len(tt.ops)-1 {
						t.Fatalf("operation %d (%c): %v", i, op, err)
					}
					break
				}
				got = append(got, s)
			}
			var ab *ul.AbortedError
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("error %v, want none", err)
			case errors.As(tt.wantErr, &ab):
				if !errors.As(err, &ab) {
					t.Errorf("error %v, want an AbortedError", err)
				}
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("results %q, want %q", got, tt.want)
			}
		})
	}
}

// elapsedWithin checks that a call bounded by d returned within a margin.
func elapsedWithin(t *testing.T, start time.Time, d time.Duration) {
	t.Helper()
	if e := time.Since(start); e < d-10*time.Millisecond || e > d+time.Second {
		t.Errorf("returned after %v, want about %v", e, d)
	}
}

func TestDeadlines(t *testing.T) {
	silent := func(conn net.Conn) {
		readRaw(conn)
		conn.SetReadDeadline(time.Now().Add(3 * time.Second)) // then hang up, so that a failure does not hang
		io.Copy(io.Discard, conn)
	}
	trickle := func(conn net.Conn) {
		readRaw(conn)
		for _, c := range dcmtkAC() {
			if _, err := conn.Write([]byte{c}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	tests := []struct {
		name   string
		peer   func(net.Conn)
		cancel bool // cancel the context instead of a deadline
	}{
		{"silence", silent, false},
		{"trickle", trickle, false},
		{"cancel", silent, true},
	}
	const d = 300 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := script(t, tt.peer)
			ctx, cancel := context.WithTimeout(context.Background(), d)
			want := context.DeadlineExceeded
			if tt.cancel {
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(d, cancel)
				want = context.Canceled
			}
			defer cancel()
			start := time.Now()
			a, err := ul.NewClient(ctx, conn, verificationConfig())
			elapsedWithin(t, start, d)
			if a != nil || !errors.Is(err, want) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("NewClient = %v, %v; want %v and os.ErrDeadlineExceeded", a, err, want)
			}
		})
	}
}

func TestAssocDeadlines(t *testing.T) {
	client, server := pair(t, verificationConfig(), ul.ServerConfig{MaxPDU: 1 << 20})
	const d = 200 * time.Millisecond
	tests := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"ReadCommand on silence", func(ctx context.Context) error { _, _, err := client.ReadCommand(ctx); return err }},
		{"Send to a peer that does not read", func(ctx context.Context) error { return client.Send(ctx, 1, make([]byte, 1<<20), nil) }},
		{"Release without reply", client.Release},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t, d)
			start := time.Now()
			err := tt.op(ctx)
			elapsedWithin(t, start, d)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("err = %v, want os.ErrDeadlineExceeded", err)
			}
		})
	}
	_ = server
}

func TestAccept(t *testing.T) {
	rq := func(change func(*ul.AAssociateRQ)) []byte {
		r := &ul.AAssociateRQ{ProtocolVersion: 1, CalledAE: "ANY-SCP", CallingAE: "PEER", ApplicationContext: ul.ApplicationContext,
			PresentationContexts: []ul.PresentationContextRQ{{ID: 1, AbstractSyntax: verification, TransferSyntaxes: []string{explicitLE, implicitLE}}},
			UserInfo:             ul.UserInfo{MaxLength: 32768, ImplementationClassUID: "1.2.3", ImplementationVersionName: "PEER_1"}}
		change(r)
		return r.Append(nil)
	}
	rejectCalling := func(rq *ul.AAssociateRQ) (*ul.AAssociateAC, *ul.AAssociateRJ) {
		if rq.CallingAE != "PACSWATCH" {
			return nil, &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 3}
		}
		return ul.DefaultAC(rq, nil, nil), nil
	}
	tests := []struct {
		name   string
		in     []byte
		decide func(*ul.AAssociateRQ) (*ul.AAssociateAC, *ul.AAssociateRJ)
		reply  ul.PDU // what the requestor gets; nil: nothing
		err    error  // from Accept; nil: success
	}{
		{"default accepts", rq(func(*ul.AAssociateRQ) {}), nil, &ul.AAssociateAC{
			ProtocolVersion: 1, CalledAE: "ANY-SCP", CallingAE: "PEER", ApplicationContext: ul.ApplicationContext,
			PresentationContexts: []ul.PresentationContextAC{{ID: 1, Result: ul.PCAcceptance, TransferSyntax: explicitLE}},
			UserInfo: ul.UserInfo{MaxLength: ul.DefaultMaxPDU, ImplementationClassUID: ul.ImplementationClassUID,
				ImplementationVersionName: ul.ImplementationVersionName}}, nil},
		{"protocol version 2", rq(func(r *ul.AAssociateRQ) { r.ProtocolVersion = 2 }), nil,
			&ul.AAssociateRJ{Result: 1, Source: 2, Reason: 2}, &ul.RejectedError{}},
		{"application context", rq(func(r *ul.AAssociateRQ) { r.ApplicationContext = "1.2.3" }), nil,
			&ul.AAssociateRJ{Result: 1, Source: 1, Reason: 2}, &ul.RejectedError{}},
		{"calling AE refused", rq(func(*ul.AAssociateRQ) {}), rejectCalling,
			&ul.AAssociateRJ{Result: 1, Source: 1, Reason: 3}, &ul.RejectedError{}},
		{"no decision", rq(func(*ul.AAssociateRQ) {}), func(*ul.AAssociateRQ) (*ul.AAssociateAC, *ul.AAssociateRJ) { return nil, nil },
			&ul.AAssociateRJ{Result: 1, Source: 1, Reason: 1}, &ul.RejectedError{}},
		{"invalid decision", rq(func(*ul.AAssociateRQ) {}), func(*ul.AAssociateRQ) (*ul.AAssociateAC, *ul.AAssociateRJ) {
			return &ul.AAssociateAC{PresentationContexts: []ul.PresentationContextAC{{ID: 1}}}, nil
		}, nil, errors.New("accepted without transfer syntax")},
		{"abort first", ul.AAbort{}.Append(nil), nil, nil, &ul.AbortedError{}},
		{"data first", pdata(1, cmdLast, nil), nil, nil, ul.ErrUnexpectedPDU},
		{"not DICOM", []byte("GET / HTTP/1.1\r\n\r\n"), nil, nil, ul.ErrUnknownPDUType},
		{"truncated", verificationRQ()[:100], nil, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := script(t, func(conn net.Conn) {
				conn.Write(tt.in)
				if tt.reply == nil {
					expectClosed(t, conn)
					return
				}
				p, err := ul.ReadPDU(conn, 1<<20)
				if err != nil || !reflect.DeepEqual(p, tt.reply) {
					t.Errorf("reply %+v, %v; want %+v", p, err, tt.reply)
				}
				if _, ok := p.(*ul.AAssociateRJ); ok {
					expectClosed(t, conn)
				}
			})
			if tt.name == "truncated" {
				conn = &closeAfter{Conn: conn, n: 100}
			}
			a, err := ul.Accept(testCtx(t, 5*time.Second), conn, ul.ServerConfig{Decide: tt.decide})
			if a != nil {
				defer a.Close()
			}
			var rj *ul.RejectedError
			var ab *ul.AbortedError
			switch {
			case tt.err == nil:
				if err != nil {
					t.Errorf("Accept: %v", err)
				}
			case errors.As(tt.err, &rj):
				if !errors.As(err, &rj) || !reflect.DeepEqual(&rj.RJ, tt.reply) {
					t.Errorf("Accept: %v, want RejectedError %+v", err, tt.reply)
				}
			case errors.As(tt.err, &ab):
				if !errors.As(err, &ab) {
					t.Errorf("Accept: %v, want an AbortedError", err)
				}
			case tt.name == "invalid decision":
				if err == nil || !strings.Contains(err.Error(), tt.err.Error()) {
					t.Errorf("Accept: %v, want an error containing %q", err, tt.err)
				}
			case !errors.Is(err, tt.err):
				t.Errorf("Accept: %v, want %v", err, tt.err)
			}
		})
	}
}

// closeAfter reports EOF after n bytes have been read.
type closeAfter struct {
	net.Conn
	n int
}

func (c *closeAfter) Read(p []byte) (int, error) {
	if c.n == 0 {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p[:min(len(p), c.n)])
	c.n -= n
	return n, err
}

func TestDefaultAC(t *testing.T) {
	rq := &ul.AAssociateRQ{PresentationContexts: []ul.PresentationContextRQ{
		{ID: 1, AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE, explicitLE}},
		{ID: 2, AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE}},
		{ID: 3, AbstractSyntax: studyGet, TransferSyntaxes: []string{implicitLE}},
		{ID: 5, AbstractSyntax: studyFind, TransferSyntaxes: []string{"1.2.840.10008.1.2.2"}},
		{ID: 7, AbstractSyntax: studyFind},
	}}
	noGet := func(as string) bool { return as != studyGet }
	tests := []struct {
		name      string
		supported func(string) bool
		prefer    []string
		want      []ul.PresentationContextAC
	}{
		{"first choice", noGet, nil, []ul.PresentationContextAC{
			{ID: 1, Result: ul.PCAcceptance, TransferSyntax: implicitLE},
			{ID: 2, Result: ul.PCNoReason},
			{ID: 3, Result: ul.PCAbstractSyntaxNotSupported},
			{ID: 5, Result: ul.PCAcceptance, TransferSyntax: "1.2.840.10008.1.2.2"},
			{ID: 7, Result: ul.PCTransferSyntaxesNotSupported},
		}},
		{"preference", nil, []string{explicitLE, implicitLE}, []ul.PresentationContextAC{
			{ID: 1, Result: ul.PCAcceptance, TransferSyntax: explicitLE},
			{ID: 2, Result: ul.PCNoReason},
			{ID: 3, Result: ul.PCAcceptance, TransferSyntax: implicitLE},
			{ID: 5, Result: ul.PCTransferSyntaxesNotSupported},
			{ID: 7, Result: ul.PCTransferSyntaxesNotSupported},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ul.DefaultAC(rq, tt.supported, tt.prefer).PresentationContexts
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDialLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx := testCtx(t, 5*time.Second)
	served := async(func() error {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		a, err := ul.Accept(ctx, conn, ul.ServerConfig{})
		if err != nil {
			return err
		}
		id, cmd, err := a.ReadCommand(ctx)
		if err != nil {
			return err
		}
		if err := a.Send(ctx, id, append(cmd, '!'), nil); err != nil {
			return err
		}
		if _, _, err := a.ReadCommand(ctx); !errors.Is(err, ul.ErrReleaseRequested) {
			return fmt.Errorf("ReadCommand = %v, want ErrReleaseRequested", err)
		}
		return a.ReplyRelease(ctx)
	})
	a, err := ul.Dial(ctx, ln.Addr().String(), verificationConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctx, 1, []byte("echo"), nil); err != nil {
		t.Fatal(err)
	}
	if _, got, err := a.ReadCommand(ctx); err != nil || string(got) != "echo!" {
		t.Errorf("ReadCommand = %q, %v; want echo!", got, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("Release: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("server: %v", err)
	}
}

// TestReadAllocations holds what reading a command and its data set allocates: reads under one
// context register with it once, not once a read (a channel, an AfterFunc and two closures each,
// before), and small P-DATA-TFs are read into a buffer and a PDV queue the Assoc reuses (a body,
// a PDataTF and its PDV slice each, before): 20 allocations then, 4 now (the reassembled command,
// the DataReader and what their interfaces cost).
func TestReadAllocations(t *testing.T) {
	const n = 200
	var stream []byte
	for range n + 10 {
		stream = append(stream, cat(pdata(3, cmdLast, []byte("CMD1")), pdata(3, dataLast, []byte("DATA")))...)
	}
	ctx := testCtx(t, 5*time.Second)
	a, err := ul.NewClient(ctx, newMemConn(cat(threeAC(0), stream)), threeConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	buf := make([]byte, 16)
	read := func() {
		if _, _, err := a.ReadCommand(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a.DataReader(ctx), buf[:4]); err != nil {
			t.Fatal(err)
		}
	}
	read() // the first read registers
	got := testing.AllocsPerRun(n, read)
	t.Logf("%.1f allocations per command and data set read", got)
	if got > 4 {
		t.Errorf("%.1f allocations per command and data set read, want at most 4", got)
	}
}
