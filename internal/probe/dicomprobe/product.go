package dicomprobe

import (
	"encoding/csv"
	"strings"
	"sync"
)

// A product rule matches an Implementation Class UID, exactly or by its root, to a product.
type productRule struct {
	uid      string
	prefix   bool // uid is a root: the product appends its version
	product  string
	honeypot bool
}

var products = sync.OnceValue(func() []productRule {
	f, err := dataFS.Open("data/implementation-uids.csv")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		panic(err)
	}
	var rules []productRule
	for _, row := range rows[1:] {
		if strings.Contains(row[0], "probe") {
			continue // scanners' identities (nmap, zgrab2): not servers
		}
		uid, _, _ := strings.Cut(row[1], " (")
		uid = strings.TrimSpace(uid)
		r := productRule{product: row[0], honeypot: strings.Contains(row[3], "honeypot")}
		if i := strings.Index(uid, "<"); i >= 0 {
			r.uid, r.prefix = uid[:i], true
		} else {
			r.uid = uid
		}
		rules = append(rules, r)
	}
	return rules
})

// Identify names the product behind an Implementation Class UID and version name, and says whether
// it is a known honeypot's identity. The version name refines DCMTK's ("OFFIS_DCMTK_367" → 3.6.7).
// Debian's Orthanc cannot be told from DCMTK by its association reply alone (peers.md): it says "DCMTK".
func Identify(classUID, versionName string) (product string, honeypot bool) {
	var best productRule
	for _, r := range products() {
		if (r.prefix && strings.HasPrefix(classUID, r.uid) || classUID == r.uid) && len(r.uid) > len(best.uid) {
			best = r
		}
	}
	if best.product == "" {
		return "", false
	}
	product = best.product
	if v, ok := strings.CutPrefix(versionName, "OFFIS_DCMTK_"); ok && product == "DCMTK" && len(v) == 3 {
		product += " " + v[:1] + "." + v[1:2] + "." + v[2:]
	}
	return product, best.honeypot
}

// signalsCap reports whether the product behind an association is known to say so when it cuts
// a C-FIND answer short, so that an answer ending with Success is whole whatever its size:
// Orthanc ends one cut by LimitFindResults with status Cancel (0xFE00), and dcm4chee-arc refuses
// a query beyond dcmQueryMaxNumberOfResults outright. Debian's Orthanc says "DCMTK" in its
// A-ASSOCIATE-AC (peers.md); computed, that the answer held NumberOfStudyRelatedInstances, tells
// it from DCMTK's dcmqrscp, which computes no counts.
func signalsCap(product string, computed bool) bool {
	switch {
	case strings.HasPrefix(product, "DCMTK"):
		return computed
	case strings.HasPrefix(product, "dcm4che 3/5"):
		return true
	}
	return false
}
