package peertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestOrthancRestart: a changed configuration file takes effect at Restart, on the same ports,
// with the same storage.
func TestOrthancRestart(t *testing.T) {
	c := Generate(3, 4, "31")
	o := StartOrthanc(t, OrthancConfig{})
	o.Upload(t, c)
	b, err := os.ReadFile(o.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	conf["DicomCheckCalledAet"] = true
	if b, err = json.Marshal(conf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.ConfigFile(), b, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Restart(t)
	if studies, _ := o.Statistics(t); studies != c.Studies {
		t.Errorf("after Restart: %d studies, want the %d stored before", studies, c.Studies)
	}
	port := fmt.Sprint(o.DICOMPort)
	if out, err := Run(t, "echoscu", "-aec", "NOT_ORTHANC", "127.0.0.1", port); err == nil {
		t.Errorf("echoscu with a wrong called AE succeeded after DicomCheckCalledAet: %s", out)
	}
	if out, err := Run(t, "echoscu", "-aec", "ORTHANC", "127.0.0.1", port); err != nil {
		t.Errorf("echoscu with the right called AE: %v\n%s", err, out)
	}
}

// TestDcmqrscpRestart: an AETable changed in the configuration file takes effect at Restart.
func TestDcmqrscpRestart(t *testing.T) {
	q := StartDcmqrscp(t, []QRAE{{Title: "FIRST"}}, nil)
	port := fmt.Sprint(q.Port)
	if out, err := Run(t, "echoscu", "-aec", "FIRST", "127.0.0.1", port); err != nil {
		t.Fatalf("echoscu FIRST: %v\n%s", err, out)
	}
	b, err := os.ReadFile(q.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("\nFIRST "), []byte("\nSECOND "), 1)
	if !strings.Contains(string(b), "\nSECOND ") {
		t.Fatalf("no AETable line for FIRST in:\n%s", b)
	}
	if err := os.WriteFile(q.ConfigFile(), b, 0o644); err != nil {
		t.Fatal(err)
	}
	q.Restart(t)
	if out, err := Run(t, "echoscu", "-aec", "FIRST", "127.0.0.1", port); err == nil {
		t.Errorf("echoscu FIRST succeeded after the AE was renamed: %s", out)
	}
	if out, err := Run(t, "echoscu", "-aec", "SECOND", "127.0.0.1", port); err != nil {
		t.Errorf("echoscu SECOND: %v\n%s", err, out)
	}
}
