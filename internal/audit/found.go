package audit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// Product keys: the products remediation is written for.
const (
	ProductOrthanc     = "orthanc"
	ProductDcmqrscp    = "dcmqrscp"
	ProductDcm4cheeArc = "dcm4chee-arc"
	ProductConquest    = "conquest"
	ProductGeneric     = "generic"
)

// ProductKeys lists the product keys, for --product.
var ProductKeys = []string{ProductOrthanc, ProductDcmqrscp, ProductDcm4cheeArc, ProductConquest, ProductGeneric}

var productNames = map[string]string{
	ProductOrthanc:     "Orthanc",
	ProductDcmqrscp:    "dcmtk dcmqrscp",
	ProductDcm4cheeArc: "dcm4chee-arc-light",
	ProductConquest:    "Conquest",
	ProductGeneric:     "an unrecognised product",
}

// basisNothing is Product.Basis when nothing named the product.
const basisNothing = "nothing"

// keyOf returns the product key of a product name as the probes spell it (web front ends,
// DICOM implementations, the AE dictionary), or "".
func keyOf(product string) string {
	p := strings.ToLower(product)
	switch {
	case strings.HasPrefix(p, "orthanc"):
		return ProductOrthanc
	case strings.HasPrefix(p, "dcm4chee-arc") || strings.HasPrefix(p, "dcm4che 3/5"):
		return ProductDcm4cheeArc
	case strings.HasPrefix(p, "conquest"):
		return ProductConquest
	case strings.HasPrefix(p, "dcmtk"):
		return ProductDcmqrscp
	}
	return ""
}

// software is one product version the probes learned, and where.
type software struct {
	product, version, where string
}

func (s software) String() string { return s.product + " " + s.version }

// learned returns the product versions r shows: the web front ends' (Orthanc's /system, ...)
// and the DICOM implementation's (its version name, PS3.7 D.3.3.2).
func learned(r *probe.Result) []software {
	var out []software
	for _, w := range r.Web {
		if w.Product != "" && w.Version != "" {
			out = append(out, software{w.Product, w.Version, "web front end " + w.URL})
		}
	}
	d := r.DICOM
	if d == nil || d.Product == "" {
		return out
	}
	where := "DICOM association (implementation version name " + d.ImplementationVersion + ")"
	switch {
	case strings.HasPrefix(d.Product, "DCMTK "):
		out = append(out, software{"DCMTK", strings.TrimPrefix(d.Product, "DCMTK "), where})
	case strings.HasPrefix(d.ImplementationVersion, "dcm4che-"):
		out = append(out, software{"dcm4che", strings.TrimPrefix(d.ImplementationVersion, "dcm4che-"), where})
	case keyOf(d.Product) == ProductConquest:
		if v, _, ok := strings.Cut(d.ImplementationVersion, "/"); ok {
			out = append(out, software{"Conquest", v, where})
		}
	}
	return out
}

// recognise names the product remediation is written for: --product, else a web front end,
// else the vendor of the AE title the archive answers to, else its DICOM implementation.
func recognise(f *facts) Product {
	if k := f.in.Product; k != "" {
		return Product{Key: k, Name: productNames[k], Basis: "--product"}
	}
	version := func(key string) string {
		for _, s := range f.software {
			if keyOf(s.product) == key {
				return s.version
			}
		}
		return ""
	}
	for _, w := range f.r.Web {
		if k := keyOf(w.Product); k != "" {
			return Product{Key: k, Name: productNames[k], Version: version(k), Basis: "web front end " + w.URL}
		}
	}
	d := f.d
	if d == nil {
		return Product{Key: ProductGeneric, Name: productNames[ProductGeneric], Basis: basisNothing}
	}
	if f.calledOK {
		if k := keyOf(f.vendorOf(d.CalledAE)); k != "" && k != ProductDcmqrscp {
			return Product{Key: k, Name: productNames[k], Version: version(k), Basis: "called AE title " + d.CalledAE}
		}
	}
	switch k := keyOf(d.Product); k {
	case ProductDcmqrscp:
		return Product{Key: k, Name: productNames[k], Version: version(k), Basis: fmt.Sprintf(
			"DICOM implementation %s (Orthanc answers as DCMTK too: give --web with its HTTP port, or --product %s)", d.Product, ProductOrthanc)}
	case "":
	default:
		return Product{Key: k, Name: productNames[k], Version: version(k), Basis: "DICOM implementation " + d.Product}
	}
	return Product{Key: ProductGeneric, Name: productNames[ProductGeneric], Basis: basisNothing}
}

// frontEnds returns the PACS web front ends the record holds (those a product was found for).
func frontEnds(r *probe.Result) []probe.Web {
	var out []probe.Web
	for _, w := range r.Web {
		if w.Product != "" {
			out = append(out, w)
		}
	}
	return out
}

func webAuth(f *facts) (Status, string) {
	ws := frontEnds(f.r)
	if len(ws) == 0 {
		if f.in.WebChecked {
			return Skip, "no PACS web front end answered"
		}
		return Skip, "not checked: give --web URL (Orthanc's HTTP port is 8042 by default)"
	}
	var open, closed []string
	for _, w := range ws {
		if w.Auth == probe.AuthNone {
			s := fmt.Sprintf("%s at %s answers without credentials", w.Product, w.URL)
			if w.Studies > 0 {
				s += fmt.Sprintf(" (%d studies, %d images)", w.Studies, w.Instances)
			}
			if w.DICOMweb {
				s += ", DICOMweb included"
			}
			open = append(open, s)
		} else {
			closed = append(closed, fmt.Sprintf("%s at %s asks for credentials", w.Product, w.URL))
		}
	}
	if len(open) > 0 {
		return Fail, strings.Join(open, "; ")
	}
	return Pass, strings.Join(closed, "; ")
}

func defaultCreds(f *facts) (Status, string) {
	if !f.in.DefaultCreds {
		return Skip, "not tried: give --default-creds to try the documented product default logins"
	}
	var asked []string
	for _, w := range frontEnds(f.r) {
		switch w.Auth {
		case probe.AuthDefaultCreds:
			return Fail, fmt.Sprintf("%s at %s accepted its documented default login", w.Product, w.URL)
		case probe.AuthBasic:
			asked = append(asked, w.URL)
		}
	}
	if len(asked) == 0 {
		return Skip, "no web front end asks for credentials"
	}
	return Pass, "the documented default login was refused at " + strings.Join(asked, ", ")
}

func versionCheck(f *facts) (Status, string) {
	if len(f.software) == 0 {
		return Skip, "no version learned (the DICOM side names none, and no web front end told one)"
	}
	var hits, names []string
	for _, s := range f.software {
		names = append(names, s.String())
		var cves []string
		fixed := ""
		for _, v := range Vulnerabilities() {
			if v.matches(s, f.product.Key) {
				cves = append(cves, v.CVE)
				fixed = maxVersion(fixed, v.Fixed)
			}
		}
		if len(cves) > 0 {
			hits = append(hits, fmt.Sprintf("%s (%s): %s; fixed in %s", s, s.where, strings.Join(cves, ", "), fixed))
		}
	}
	if len(hits) > 0 {
		return Fail, strings.Join(hits, "; ")
	}
	slices.Sort(names)
	return Pass, strings.Join(slices.Compact(names), ", ") + ": in none of pacswatch's known-vulnerable ranges"
}

func honeypot(f *facts) (Status, string) {
	var signs []string
	if d := f.d; d != nil && d.Honeypot {
		signs = append(signs, fmt.Sprintf("Implementation Class UID %s is a known honeypot's", d.ImplementationClassUID))
	}
	if e := f.r.Exposure; e != nil {
		for _, c := range e.Caveats {
			if c.Kind == probe.CaveatHoneypot {
				signs = append(signs, c.Reason)
			}
		}
	}
	if len(signs) > 0 {
		return Fail, strings.Join(signs, "; ")
	}
	return Pass, "no honeypot fingerprint"
}
