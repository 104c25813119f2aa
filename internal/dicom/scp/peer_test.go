package scp_test

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/scp"
	"github.com/pacswatch/pacswatch/internal/peertest"
)

// hostPort splits a server's address for dcmtk's command lines.
func hostPort(t *testing.T, s *scp.Server) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// TestDcmtkEcho: where our test SCP answers dcmtk's SCUs, they succeed.
func TestDcmtkEcho(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{AETitle: "PACS", CheckCalled: true})
	host, port := hostPort(t, s)
	if out, err := peertest.Run(t, "echoscu", "-aec", "PACS", host, port); err != nil {
		t.Fatalf("echoscu: %v\n%s", err, out)
	}
	// The called AE check holds against dcmtk too.
	if out, err := peertest.Run(t, "echoscu", "-aec", "OTHER", host, port); err == nil || !strings.Contains(out, "Called AE Title Not Recognized") {
		t.Errorf("echoscu with a wrong called AE: %v\n%s", err, out)
	}
	waitIdle(t, s)
	if got := s.Stats(); got.Echo != 1 || got.Rejected != 1 {
		t.Errorf("stats = %+v, want 1 echo, 1 rejected", got)
	}
}

func TestDcmtkFind(t *testing.T) {
	tree := scp.NewTree(7, 40)
	for _, tc := range []struct {
		name string
		cfg  scp.Config
		args []string
		want int
	}{
		{"study", scp.Config{Tree: tree}, []string{"-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID"}, 40},
		{"study orthanc-like", scp.Config{Tree: tree, ComputedCounts: true, Chatty: true},
			[]string{"-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "-k", "NumberOfStudyRelatedInstances", "-k", "ModalitiesInStudy"}, 40},
		{"limited", scp.Config{Tree: tree, LimitFind: 5}, []string{"-S", "-k", "QueryRetrieveLevel=STUDY"}, 5},
		{"patient root", scp.Config{Tree: tree}, []string{"-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID"}, 21},
		{"series of a study", scp.Config{Tree: tree},
			[]string{"-S", "-k", "QueryRetrieveLevel=SERIES", "-k", "StudyInstanceUID=" + tree.Studies[0].UID, "-k", "SeriesInstanceUID"},
			len(tree.Studies[0].Series)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dicomtest.Start(t, tc.cfg)
			host, port := hostPort(t, s)
			argv := append([]string{"findscu", "-v", "-aec", "DICOMTEST"}, tc.args...)
			out, err := peertest.Run(t, append(argv, host, port)...)
			if err != nil {
				t.Fatalf("findscu: %v\n%s", err, out)
			}
			if got := strings.Count(out, "(Pending)"); got != tc.want {
				t.Errorf("findscu printed %d pending responses, want %d:\n%s", got, tc.want, out)
			}
			if !strings.Contains(out, "Received Final Find Response (Success)") {
				t.Errorf("no final success in findscu's output:\n%s", out)
			}
		})
	}
}

func TestDcmtkGet(t *testing.T) {
	tree := scp.NewTree(9, 10)
	study := tree.Studies[3]
	s := dicomtest.Start(t, scp.Config{Tree: tree})
	host, port := hostPort(t, s)
	dir := t.TempDir()
	out, err := peertest.Run(t, "getscu", "-aec", "DICOMTEST", "-S", "-k", "QueryRetrieveLevel=STUDY",
		"-k", "StudyInstanceUID="+study.UID, "-od", dir, host, port)
	if err != nil {
		t.Fatalf("getscu: %v\n%s", err, out)
	}
	if got, want := countFiles(t, dir), study.Instances(); got != want {
		t.Errorf("getscu received %d files, want %d:\n%s", got, want, out)
	}
}

func TestDcmtkMove(t *testing.T) {
	dest := peertest.StartStorescp(t, "STORESCP")
	tree := scp.NewTree(11, 10)
	study := tree.Studies[2]
	s := dicomtest.Start(t, scp.Config{Tree: tree, MoveDestinations: map[string]string{
		"STORESCP": net.JoinHostPort("127.0.0.1", strconv.Itoa(dest.Port)),
	}})
	host, port := hostPort(t, s)
	out, err := peertest.Run(t, "movescu", "-aec", "DICOMTEST", "-aem", "STORESCP", "-S", "-k", "QueryRetrieveLevel=STUDY",
		"-k", "StudyInstanceUID="+study.UID, host, port)
	if err != nil {
		t.Fatalf("movescu: %v\n%s", err, out)
	}
	// storescp writes each file when it has read it: allow it a moment.
	want := study.Instances()
	for deadline := time.Now().Add(5 * time.Second); dest.Received(t) < want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if got := dest.Received(t); got != want {
		t.Errorf("storescp received %d files, want %d:\n%s", got, want, out)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
