package guard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
)

// The property test's little world: AE titles, source addresses, networks and destinations
// drawn from small sets, so that random policies and requests meet often.
var (
	propAEs     = []string{"A", "B", "C", "*"}
	propSources = []string{"127.0.0.1", "127.0.0.2", "127.0.1.5", "127.0.2.9"}
	propNets    = []string{"127.0.0.1/32", "127.0.0.2/32", "127.0.1.0/24", "127.0.0.0/8", "127.0.2.9/32"}
	propDests   = []string{"D1", "D2"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func subset[T any](r *rand.Rand, s []T) []T {
	var out []T
	for _, v := range s {
		if r.IntN(2) == 0 {
			out = append(out, v)
		}
	}
	return out
}

// randomPolicy writes a random policy in YAML, so that the parser is part of what is tested.
func randomPolicy(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString("peers:\n")
	for i := range 1 + r.IntN(4) {
		fmt.Fprintf(&b, "  - name: p%d\n", i)
		aes := subset(r, propAEs)
		if len(aes) == 0 {
			aes = []string{pick(r, propAEs)}
		}
		fmt.Fprintf(&b, "    calling_ae: [%s]\n", quoteAll(aes))
		nets := subset(r, propNets)
		if len(nets) == 0 {
			nets = []string{pick(r, propNets)}
		}
		fmt.Fprintf(&b, "    source: [%s]\n", strings.Join(nets, ", "))
		svcs := subset(r, policy.Services)
		fmt.Fprintf(&b, "    services: [%s]\n", joinAny(svcs))
		if slices.Contains(svcs, policy.Find) || slices.Contains(svcs, policy.Get) || slices.Contains(svcs, policy.Move) {
			lv := subset(r, policy.Levels)
			if len(lv) == 0 {
				lv = []policy.Level{pick(r, policy.Levels)}
			}
			fmt.Fprintf(&b, "    query_levels: [%s]\n", joinAny(lv))
		}
		if slices.Contains(svcs, policy.Move) {
			fmt.Fprintf(&b, "    move_destinations: [%s]\n", pick(r, propDests))
		}
		fmt.Fprintf(&b, "    universal_find: %v\n", r.IntN(2) == 0)
	}
	return b.String()
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = `"` + v + `"`
	}
	return strings.Join(q, ", ")
}

func joinAny[T ~string](s []T) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = string(v)
	}
	return strings.Join(q, ", ")
}

// attempt is one random association and request.
type attempt struct {
	calling, source string
	service         policy.Service
	level           policy.Level
	universal       bool
	dest            string
}

func randomAttempt(r *rand.Rand) attempt {
	return attempt{
		calling:   pick(r, []string{"A", "B", "C", "Z"}),
		source:    pick(r, propSources),
		service:   pick(r, policy.Services),
		level:     pick(r, policy.Levels),
		universal: r.IntN(2) == 0,
		dest:      pick(r, append([]string{"D3"}, propDests...)),
	}
}

// allowed is the test's own reading of the policy, written apart from the guard's: the first
// entry whose AE title and network match decides; it admits the association when it allows any
// service (the client proposes every service's contexts), and the request when the service,
// level, universality and destination are all listed.
func allowed(p *policy.Policy, a attempt) (assoc, request bool) {
	src := netip.MustParseAddr(a.source)
	for _, pe := range p.Peers {
		aeOK := slices.Contains(pe.CallingAE, a.calling) || slices.Contains(pe.CallingAE, "*")
		netOK := false
		for _, n := range pe.Sources {
			netOK = netOK || n.Contains(src)
		}
		if !aeOK || !netOK {
			continue
		}
		if len(pe.Services) == 0 {
			return false, false
		}
		ok := slices.Contains(pe.Services, a.service)
		if a.service == policy.Find || a.service == policy.Get || a.service == policy.Move {
			ok = ok && slices.Contains(pe.Levels, a.level)
		}
		if a.service == policy.Find && a.universal {
			ok = ok && pe.UniversalFind
		}
		if a.service == policy.Move {
			ok = ok && slices.Contains(pe.MoveDestinations, a.dest)
		}
		return true, ok
	}
	return false, false
}

// TestPropertyNothingUnallowedAdmitted: random policies × random association requests and
// DIMSE requests, from random loopback sources, against an upstream that accepts everything:
// the upstream sees a request exactly when the policy allows it, and an association only when
// the policy admits its peer.
func TestPropertyNothingUnallowedAdmitted(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 17))
	policies, perPolicy := 30, 40
	if testing.Short() {
		policies, perPolicy = 3, 15
	}
	up := dicomtest.Start(t, dicomtest.Config{AETitle: "ARCHIVE", Tree: dicomtest.NewTree(3, 2),
		MoveDestinations: map[string]string{"D1": "127.0.0.1:1", "D2": "127.0.0.1:1", "D3": "127.0.0.1:1"}})
	admittedWrongly, refusedWrongly := 0, 0
	for range policies {
		src := randomPolicy(r)
		g := startGuard(t, up.Addr(), src)
		p := g.Policy()
		for range perPolicy {
			a := randomAttempt(r)
			wantAssoc, wantReq := allowed(p, a)
			before := up.Stats()
			gotAssoc, err := tryAttempt(g.Addr, a)
			if err != nil {
				t.Fatalf("%+v under\n%s: %v", a, src, err)
			}
			after := up.Stats()
			gotReq := counter(after, a.service) > counter(before, a.service)
			if (gotAssoc && !wantAssoc) || (gotReq && !wantReq) {
				admittedWrongly++
				t.Errorf("admitted what the policy does not allow: %+v (association %v, request %v) under\n%s", a, gotAssoc, gotReq, src)
			}
			if gotAssoc != wantAssoc || gotReq != wantReq {
				refusedWrongly++
				t.Errorf("refused what the policy allows: %+v (association %v/%v, request %v/%v) under\n%s",
					a, gotAssoc, wantAssoc, gotReq, wantReq, src)
			}
			if !wantAssoc && after.Connections != before.Connections {
				t.Errorf("the upstream was contacted for a refused association: %+v under\n%s", a, src)
			}
		}
		g.Close()
	}
	t.Logf("%d policies × %d attempts: %d admitted wrongly, %d refused wrongly", policies, perPolicy, admittedWrongly, refusedWrongly)
}

func counter(s dicomtest.Stats, svc policy.Service) int64 {
	switch svc {
	case policy.Echo:
		return s.Echo
	case policy.Find:
		return s.Find
	case policy.Get:
		return s.Get
	case policy.Move:
		return s.Move
	}
	return s.Store
}

// tryAttempt associates from a.source as a.calling, proposing every service's contexts, and
// sends a.service's request. It reports whether the association was accepted; an error is a
// failure of the guard (a reset, an abort, a malformed answer), never a refusal.
func tryAttempt(addr string, a attempt) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(a.source)}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	contexts, roles := dimse.ProposeGet()
	assoc, err := ul.NewClient(ctx, conn, ul.Config{CalledAE: "ARCHIVE", CallingAE: a.calling, Contexts: contexts, Roles: roles})
	if _, ok := rejected(err); ok {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer assoc.Close()
	var q dicom.Dataset
	q.Set(dicom.NewString(dicom.QueryRetrieveLevel, string(a.level)))
	q.Set(dicom.NewString(dicom.StudyInstanceUID, ""))
	if !a.universal || a.service != policy.Find {
		q.Set(dicom.NewString(dicom.StudyInstanceUID, "1.2.3.4"))
	}
	switch a.service {
	case policy.Echo:
		_, err = dimse.Echo(ctx, assoc)
	case policy.Find:
		_, err = dimse.Find(ctx, assoc, dimse.StudyRootFind, q, dimse.FindOptions{}, func(dicom.Dataset) error { return nil })
	case policy.Get:
		_, err = dimse.Get(ctx, assoc, dimse.StudyRootGet, q, nil)
	case policy.Move:
		_, err = dimse.Move(ctx, assoc, dimse.StudyRootMove, a.dest, q)
	case policy.Store:
		_, err = storeOne(ctx, assoc)
	}
	if err != nil && !errors.Is(err, dimse.ErrNoContext) && !errors.Is(err, errNoStorage) { // no context: the guard refused the service's
		return true, fmt.Errorf("%s: %w", a.service, err)
	}
	return true, assoc.Release(ctx)
}

var errNoStorage = errors.New("no CT storage context")

// storeOne sends one small synthetic CT instance with C-STORE and returns the response's status.
func storeOne(ctx context.Context, a *ul.Assoc) (dimse.Status, error) {
	pc, ok := a.Context(dimse.StorageClasses[0])
	if !ok {
		return 0, errNoStorage
	}
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.SOPClassUID, dimse.StorageClasses[0]))
	ds.Set(dicom.NewString(dicom.SOPInstanceUID, "2.25.1234"))
	data, err := dicom.Encode(ds, pc.TransferSyntax == dicom.ExplicitVRLittleEndian)
	if err != nil {
		return 0, err
	}
	rq := dimse.Command{Field: dimse.CStoreRQ, MessageID: 7, AffectedSOPClassUID: dimse.StorageClasses[0],
		AffectedSOPInstanceUID: "2.25.1234", HasDataset: true}
	if err := a.Send(ctx, pc.ID, rq.Encode(), data); err != nil {
		return 0, err
	}
	_, b, err := a.ReadCommand(ctx)
	if err != nil {
		return 0, err
	}
	c, err := dimse.DecodeCommand(b)
	if err != nil {
		return 0, err
	}
	if c.Field != dimse.CStoreRSP || c.MessageIDBeingRespondedTo != 7 {
		return 0, fmt.Errorf("answer %v to message %d", c.Field, c.MessageIDBeingRespondedTo)
	}
	return c.Status, nil
}
