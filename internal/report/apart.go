package report

import (
	"net/netip"
	"slices"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// Apart are a group's figures kept out of its totals (SPEC "report": totals sum only exact and
// labelled-estimate counts of confirmed systems; capped, implausible and honeypot counts, and
// web front ends, in their own columns).
type Apart struct {
	// CappedSystems are accessible systems whose study count is a lower bound (a server's result
	// cap hit and not sliced away): they are in systems found and accessible, their studies and
	// images only here, as lower bounds.
	CappedSystems int64 `json:"capped_systems"`
	CappedStudies int64 `json:"capped_studies_at_least"`
	CappedImages  int64 `json:"capped_images_at_least"`
	// ImplausibleSystems are hosts a port of which claimed counts beyond the plausibility bounds
	// (SPEC "Result record"), and HoneypotSystems hosts a port of which was flagged as a
	// honeypot: those ports are in no figure (another port of the host may be).
	ImplausibleSystems int64 `json:"implausible_systems"`
	HoneypotSystems    int64 `json:"honeypot_systems"`
	// WebSystems are systems accessible through a web front end without authentication (Orthanc
	// REST, DICOMweb, dcm4chee-arc) with studies, and not through DICOM: a host whose DICOM side
	// is accessible counts once, there. WebStudies and WebImages are what those front ends show.
	WebSystems int64 `json:"web_systems_accessible"`
	WebStudies int64 `json:"web_studies"`
	WebImages  int64 `json:"web_images"`
}

func (a *Apart) add(o Apart) {
	a.CappedSystems = addSat(a.CappedSystems, o.CappedSystems)
	a.CappedStudies = addSat(a.CappedStudies, o.CappedStudies)
	a.CappedImages = addSat(a.CappedImages, o.CappedImages)
	a.ImplausibleSystems = addSat(a.ImplausibleSystems, o.ImplausibleSystems)
	a.HoneypotSystems = addSat(a.HoneypotSystems, o.HoneypotSystems)
	a.WebSystems = addSat(a.WebSystems, o.WebSystems)
	a.WebStudies = addSat(a.WebStudies, o.WebStudies)
	a.WebImages = addSat(a.WebImages, o.WebImages)
}

// CaveatHost is one host:port whose counts are kept apart, and what it claimed.
type CaveatHost struct {
	Addr    string `json:"addr"`   // address:port
	Kind    string `json:"kind"`   // probe.CaveatCapped, CaveatImplausible or CaveatHoneypot
	Reason  string `json:"reason"` // what was seen (no patient data)
	Studies int64  `json:"studies_claimed"`
	Images  int64  `json:"images_claimed"`
}

// maxCaveatHosts caps the hosts a report lists under its caveats; the rest are counted.
const maxCaveatHosts = 100

// caveatHit is a port's caveat, as a host notes it.
type caveatHit = CaveatHost

// Web plausibility bounds (SPEC "Result record"): a web front end's counts beyond them are no
// system's.
const (
	maxWebStudies        = 10_000_000
	maxWebImagesPerStudy = 100_000
)

// note records r's caveats that keep counts apart (capped, implausible, honeypot), and whether
// the host holds a honeypot or an implausible port.
func (h *host) note(r *probe.Result) {
	if r.DICOM != nil && r.DICOM.Honeypot {
		h.honeypot = true
	}
	var e probe.Exposure
	if r.Exposure != nil {
		e = *r.Exposure
	}
	addr := netip.AddrPortFrom(r.IP, r.Port).String()
	var kinds []string
	for _, c := range e.Caveats {
		switch c.Kind {
		case probe.CaveatHoneypot:
			h.honeypot = true
		case probe.CaveatImplausible:
			h.implaus = true
		case probe.CaveatCapped:
		default:
			continue
		}
		if slices.Contains(kinds, c.Kind) {
			continue
		}
		kinds = append(kinds, c.Kind)
		reason := c.Reason
		if reason == "" {
			reason = "no reason given"
		}
		h.apart = append(h.apart, caveatHit{Addr: addr, Kind: c.Kind, Reason: reason, Studies: e.Studies, Images: e.Instances})
	}
	if r.DICOM != nil && r.DICOM.Honeypot && !slices.Contains(kinds, probe.CaveatHoneypot) {
		h.apart = append(h.apart, caveatHit{Addr: addr, Kind: probe.CaveatHoneypot, Reason: "flagged as a honeypot", Studies: e.Studies, Images: e.Instances})
	}
}

// addWeb keeps the largest web front end open without authentication whose counts are
// plausible: several front ends of one host (REST and DICOMweb of one Orthanc) show one archive.
func (h *host) addWeb(ws []probe.Web) {
	for i := range ws {
		w := ws[i]
		if w.Auth != probe.AuthNone || w.Studies <= 0 || w.Studies > maxWebStudies || w.Instances/w.Studies > maxWebImagesPerStudy {
			continue
		}
		if h.web == nil || w.Studies > h.web.Studies || w.Studies == h.web.Studies && w.Instances > h.web.Instances {
			h.web = &w
		}
	}
}

// apartFigures returns the host's figures kept apart (see Apart).
func (h *host) apartFigures() Apart {
	var a Apart
	if h.lowerBound() {
		e := h.rep.Exposure
		a.CappedSystems, a.CappedStudies, a.CappedImages = 1, e.Studies, e.Instances
	}
	switch {
	case h.honeypot:
		a.HoneypotSystems = 1
	case h.implaus:
		a.ImplausibleSystems = 1
	}
	if h.web != nil && !h.accessible() {
		a.WebSystems, a.WebStudies, a.WebImages = 1, h.web.Studies, h.web.Instances
	}
	return a
}

// list adds the host's kept-apart ports to the caveats section, up to maxCaveatHosts.
func (c *Caveats) list(h *host) {
	for _, hit := range h.apart {
		if len(c.Hosts) < maxCaveatHosts {
			c.Hosts = append(c.Hosts, hit)
		} else {
			c.HostsNotListed++
		}
	}
}
