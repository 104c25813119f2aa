package audit

import (
	"net/netip"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
)

// fixedNow is the clock of the fixtures' audits.
var fixedNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// record returns a record of 127.0.0.1:port as the probe leaves it, for fixtures.
func record(port uint16, d *probe.DICOM, e *probe.Exposure, web ...probe.Web) probe.Result {
	return probe.Result{IP: netip.MustParseAddr("127.0.0.1"), Port: port, Time: fixedNow, Status: probe.StatusOpen,
		Depth: "query", DICOM: d, Exposure: e, Web: web}
}

// dcmtk is the association facts of a DCMTK 3.6.7 peer (Orthanc on Debian, dcmqrscp).
func dcmtk(d probe.DICOM) *probe.DICOM {
	d.CallingAE = "PACSWATCH"
	d.ImplementationClassUID, d.ImplementationVersion = "1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367"
	d.Product, d.MaxPDU = "DCMTK 3.6.7", 16384
	return &d
}

// fixtures are audits of records the probes made of real peers (trimmed), and of ones they
// may make of others: the golden files' inputs.
func fixtures() map[string]Input {
	notAfter := time.Date(2031, 6, 30, 0, 0, 0, 0, time.UTC)
	return map[string]Input{
		"orthanc-open": {Record: record(4242,
			dcmtk(probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", AECheck: probe.AECheckNone,
				Services: probe.Services{Echo: true, FindStudy: true, Get: true, Move: true, Store: true}}),
			&probe.Exposure{Level: probe.LevelRetrieve, Studies: 3, StudiesExact: true, Instances: 14,
				InstancesSource: probe.InstancesSourceStudyAttr, Modalities: map[string]int64{"CR": 2, "US": 1}, Retrieve: probe.RetrieveAccepted},
			probe.Web{URL: "http://127.0.0.1:8042/", Product: "Orthanc", Version: "1.10.1", Auth: probe.AuthNone, Studies: 3, Instances: 14, DICOMweb: true}),
			StorageProposed: true, WebChecked: true, Now: fixedNow},
		"dcmqrscp-any": {Record: record(11112,
			dcmtk(probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ARCHIVE", AECheck: probe.AECheckCalled,
				Services: probe.Services{Echo: true, FindStudy: true, Get: true, Move: true, Store: true}}),
			&probe.Exposure{Level: probe.LevelRetrieve, Studies: 500, StudiesExact: true, Instances: 2210,
				InstancesSource: probe.InstancesSourceSeries, Modalities: map[string]int64{"CT": 300, "MR": 200}, Retrieve: probe.RetrieveAccepted}),
			CalledAE: "ARCHIVE", StorageProposed: true, Now: fixedNow},
		"orthanc-closed-tls": {Record: func() probe.Result {
			r := record(4242, &probe.DICOM{CallingAE: "PACSWATCH", CalledAE: "ANY-SCP", AECheck: probe.AECheckUnknown, TLS: true,
				TLSCert: &probe.TLSCert{Subject: "CN=pacs.hospital.example", Issuer: "CN=Hospital CA", NotAfter: notAfter, Version: "TLS 1.3"}},
				&probe.Exposure{Level: probe.LevelProtected},
				probe.Web{URL: "http://127.0.0.1:8042/", Product: "Orthanc", Auth: probe.AuthBasic})
			r.Error = dicomprobe.TextClientCertRequired
			return r
		}(), CalledAE: "HOSP_ARCH_7", StorageProposed: true, WebChecked: true, DefaultCreds: true, Now: fixedNow},
		"orthanc-vendor-ae": {Record: record(4242,
			dcmtk(probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ORTHANC", AECheck: probe.AECheckCalled,
				Services: probe.Services{Echo: true, Store: true}}),
			&probe.Exposure{Level: probe.LevelEcho},
			probe.Web{URL: "http://127.0.0.1:8042/", Product: "Orthanc", Version: "1.12.11", Auth: probe.AuthDefaultCreds}),
			StorageProposed: true, WebChecked: true, DefaultCreds: true, Now: fixedNow},
		"dcm4chee-arc": {Record: record(11112,
			&probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "DCM4CHEE", CallingAE: "PACSWATCH", AECheck: probe.AECheckCalled,
				ImplementationClassUID: "1.2.40.0.13.1.3", ImplementationVersion: "dcm4che-5.31.0", Product: "dcm4che 3/5 (dcm4chee-arc-light)",
				Services: probe.Services{Echo: true, FindStudy: true}},
			&probe.Exposure{Level: probe.LevelQuery, Studies: 120, Instances: 0, Retrieve: probe.RetrieveRefused}),
			StorageProposed: true, Now: fixedNow},
		"honeypot-old-tls": {Record: record(104,
			&probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH", AECheck: probe.AECheckNone,
				ImplementationClassUID: "1.2.826.0.1.3680043.9.7133.1.1", ImplementationVersion: "GODICOM_1_1", Product: "go-dicom (dicompot)",
				Honeypot: true, TLS: true, Services: probe.Services{Echo: true},
				TLSCert: &probe.TLSCert{Subject: "CN=radiant", Issuer: "CN=radiant", NotAfter: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), SelfSigned: true, Version: "TLS 1.0"}},
			&probe.Exposure{Level: probe.LevelEcho, Caveats: []probe.Caveat{{Kind: probe.CaveatHoneypot, Reason: "known honeypot fingerprint (dicompot)"}}}),
			StorageProposed: true, Now: fixedNow},
	}
}
