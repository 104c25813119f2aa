// Command convert turns the output of other tools into pacswatch's JSON Lines result records, so
// that "pacswatch sim score" scores them against a simulated fleet's truth like a pacswatch scan:
//
//	convert nmap  < nmap.xml    # nmap -oX with --script dicom-ping
//	convert dcmtk < loop.log    # lines "IP PORT EXIT PENDING REJECTED" from an echoscu/findscu loop
//
// Each record claims only what the tool can tell: nmap's dicom-ping an accepted or rejected
// association ("Any AET is accepted" or "Called AET check enabled"), echoscu an accepted
// association and a C-ECHO, findscu the number of studies its C-FIND returned.
package main

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/pacswatch/pacswatch/internal/probe"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: convert nmap|dcmtk < input > results.jsonl")
		os.Exit(2)
	}
	var err error
	enc := json.NewEncoder(os.Stdout)
	switch os.Args[1] {
	case "nmap":
		err = fromNmap(os.Stdin, enc)
	case "dcmtk":
		err = fromDcmtk(os.Stdin, enc)
	default:
		err = fmt.Errorf("unknown input %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "convert:", err)
		os.Exit(1)
	}
}

// nmapRun is the part of nmap's XML output (nmap.dtd) read here.
type nmapRun struct {
	Hosts []struct {
		Addresses []struct {
			Addr string `xml:"addr,attr"`
			Type string `xml:"addrtype,attr"`
		} `xml:"address"`
		Ports []struct {
			ID    uint16 `xml:"portid,attr"`
			State struct {
				State string `xml:"state,attr"`
			} `xml:"state"`
			Scripts []struct {
				ID     string `xml:"id,attr"`
				Output string `xml:"output,attr"`
			} `xml:"script"`
		} `xml:"ports>port"`
	} `xml:"host"`
}

func fromNmap(r io.Reader, enc *json.Encoder) error {
	var run nmapRun
	if err := xml.NewDecoder(r).Decode(&run); err != nil {
		return fmt.Errorf("nmap xml: %w", err)
	}
	for _, h := range run.Hosts {
		var ip netip.Addr
		for _, a := range h.Addresses {
			if a.Type == "ipv4" || a.Type == "ipv6" {
				ip, _ = netip.ParseAddr(a.Addr)
			}
		}
		if !ip.IsValid() {
			continue
		}
		for _, p := range h.Ports {
			if p.State.State != "open" {
				continue // closed and filtered ports are what a missing record means
			}
			out := ""
			for _, s := range p.Scripts {
				if s.ID == "dicom-ping" {
					out = s.Output
				}
			}
			res := probe.Result{IP: ip, Port: p.ID, Status: probe.StatusOpen, Exposure: &probe.Exposure{Level: probe.LevelNotDICOM}}
			switch {
			case strings.Contains(out, "Any AET is accepted"):
				res.DICOM = &probe.DICOM{Association: probe.AssociationAccepted, AECheck: probe.AECheckNone}
				res.Exposure.Level = probe.LevelEcho
			case strings.Contains(out, "Called AET check enabled"):
				res.DICOM = &probe.DICOM{Association: probe.AssociationRejected, AECheck: probe.AECheckCalled}
				res.Exposure.Level = probe.LevelProtected
			}
			if err := enc.Encode(res); err != nil {
				return err
			}
		}
	}
	return nil
}

// fromDcmtk reads the lines a bench loop writes per target: the address, the port, the tool's
// exit status, the number of pending C-FIND responses it printed, and 1 if it printed
// "Association Rejected".
func fromDcmtk(r io.Reader, enc *json.Encoder) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 5 {
			return fmt.Errorf("line %d: want IP PORT EXIT PENDING REJECTED", n)
		}
		ip, err := netip.ParseAddr(f[0])
		port, err2 := strconv.ParseUint(f[1], 10, 16)
		rc, err3 := strconv.Atoi(f[2])
		pending, err4 := strconv.ParseInt(f[3], 10, 64)
		if err != nil || err2 != nil || err3 != nil || err4 != nil {
			return fmt.Errorf("line %d: bad field", n)
		}
		res := probe.Result{IP: ip, Port: uint16(port), Status: probe.StatusOpen}
		accepted := &probe.DICOM{Association: probe.AssociationAccepted}
		switch {
		case f[4] == "1":
			res.DICOM = &probe.DICOM{Association: probe.AssociationRejected}
			res.Exposure = &probe.Exposure{Level: probe.LevelProtected}
		case pending > 0:
			res.DICOM = accepted
			res.Exposure = &probe.Exposure{Level: probe.LevelQuery, Studies: pending}
		case rc == 0:
			res.DICOM = accepted
			res.Exposure = &probe.Exposure{Level: probe.LevelEcho}
		default:
			continue // the tool could not tell: as if it reported nothing
		}
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	return sc.Err()
}
