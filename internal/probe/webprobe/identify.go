package webprobe

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// The documented default logins tried under Config.DefaultCreds, each only against its own
// product (../shared/data/ae-titles.csv).
var (
	orthancDefault   = credential{"orthanc", "orthanc"} // Orthanc Docker images (orthanc-book users/docker.rst)
	dcm4chee2Default = credential{"admin", "admin"}     // dcm4chee 2.x web3 (dpatriarche/docker-dcm4chee README)
)

// qidoAccept asks a QIDO-RS service for DICOM JSON (PS3.18 §8.7.3, §10.6.3).
const qidoAccept = "application/dicom+json, application/json;q=0.9"

// qidoQuery is the query string of every QIDO-RS request: one study, and only an allow-listed
// key (SPEC). Servers may return more; nothing of the answer is kept but its shape.
const qidoQuery = "?limit=1&includefield=StudyInstanceUID"

// identify runs every product check against the target whose "/" answered root, and returns one
// record per front end found, or one record without a product when none was.
func (s *session) identify(ctx context.Context, root *response) []probe.Web {
	var webs []probe.Web
	orthanc, isOrthanc := s.orthanc(ctx)
	if isOrthanc {
		webs = append(webs, orthanc)
	}
	for _, check := range []func(context.Context, *response) (probe.Web, bool){s.dcm4cheeArc, s.dcm4chee2, s.dicoogle, s.ohif} {
		if ctx.Err() != nil {
			break
		}
		if w, ok := check(ctx, root); ok {
			webs = append(webs, w)
		}
	}
	// Orthanc's DICOMweb plugin was checked with Orthanc (and its credentials). Elsewhere, the
	// conventional root may still serve QIDO-RS, for example behind the proxy of an OHIF viewer.
	if !isOrthanc && ctx.Err() == nil {
		if r, err := s.qido(ctx, "/dicom-web/studies", nil); err == nil && qidoAnswered(r, false) {
			webs = append(webs, probe.Web{URL: s.url("/dicom-web/"), Auth: probe.AuthNone, DICOMweb: true})
		}
	}
	if len(webs) == 0 {
		webs = append(webs, probe.Web{URL: s.url("/"), Auth: authOf(root)})
	}
	return webs
}

// orthanc identifies Orthanc by its REST API: GET /system names its version (and DICOM AE title);
// with authentication on, every path answers 401 with the realm "Orthanc Secure Area". Counts
// come from /statistics, which counts without listing anything.
func (s *session) orthanc(ctx context.Context) (probe.Web, bool) {
	w := probe.Web{URL: s.url("/"), Product: ProductOrthanc}
	r, err := s.get(ctx, "/system", nil, s.p.cfg.MaxBody)
	if err != nil {
		return w, false
	}
	var cred *credential
	sys, ok := parseSystem(r.body)
	switch {
	case r.status == http.StatusOK && ok:
		w.Auth = probe.AuthNone
	case r.status == http.StatusUnauthorized && strings.Contains(strings.ToLower(strings.Join(r.header.Values("WWW-Authenticate"), " ")), "orthanc"):
		w.Auth = authOf(r)
		if !s.p.cfg.DefaultCreds || ctx.Err() != nil {
			return w, true
		}
		c := orthancDefault
		r, err = s.get(ctx, "/system", &c, s.p.cfg.MaxBody)
		if err != nil || r.status != http.StatusOK {
			return w, true
		}
		if sys, ok = parseSystem(r.body); !ok {
			return w, true
		}
		w.Auth, cred = probe.AuthDefaultCreds, &c
	default:
		return w, false
	}
	w.Version = sys.Version
	if r, err := s.get(ctx, "/statistics", cred, s.p.cfg.MaxBody); err == nil && r.status == http.StatusOK {
		if st, ok := parseStatistics(r.body); ok {
			w.Studies, w.Instances = st.CountStudies, st.CountInstances
		}
	}
	if r, err := s.qido(ctx, "/dicom-web/studies", cred); err == nil {
		w.DICOMweb = qidoAnswered(r, false)
	}
	return w, true
}

// dcm4cheeArc identifies dcm4chee-arc-light by the title of its web UI, then asks its REST API
// for the archive's AE titles and, for the main one, counts studies and instances with the
// archive's own QIDO-RS count extension (…/rs/studies/count: {"count":N}), which lists nothing.
func (s *session) dcm4cheeArc(ctx context.Context, _ *response) (probe.Web, bool) {
	w := probe.Web{URL: s.url("/dcm4chee-arc/ui2/"), Product: ProductDcm4cheeArc}
	r, err := s.get(ctx, "/dcm4chee-arc/ui2/", nil, maxHTML)
	if err != nil || r.status != http.StatusOK || !strings.Contains(strings.ToLower(htmlTitle(r.body)), "dcm4chee-arc") {
		return w, false
	}
	r, err = s.get(ctx, "/dcm4chee-arc/aets", nil, s.p.cfg.MaxBody)
	if err != nil {
		return w, true
	}
	w.Auth = authOf(r)
	if w.Auth != probe.AuthNone {
		return w, true
	}
	aets := parseAETs(r.body)
	if len(aets) == 0 {
		w.Auth = probe.AuthUnknown // not the AE list the UI needs: something else answered
		return w, true
	}
	rs := "/dcm4chee-arc/aets/" + url.PathEscape(mainAE(aets)) + "/rs"
	if r, err := s.get(ctx, rs+"/studies/count", nil, s.p.cfg.MaxBody); err == nil && r.status == http.StatusOK {
		w.Studies, _ = parseCount(r.body)
	}
	if r, err := s.get(ctx, rs+"/instances/count", nil, s.p.cfg.MaxBody); err == nil && r.status == http.StatusOK {
		w.Instances, _ = parseCount(r.body)
	}
	if r, err := s.qido(ctx, rs+"/studies", nil); err == nil {
		w.DICOMweb = qidoAnswered(r, true)
	}
	return w, true
}

// mainAE picks the AE title to count: dcm4chee-arc's default archive AE DCM4CHEE when listed (the
// others are mostly views of the same studies, IOCM_*), else the first.
func mainAE(aets []string) string {
	for _, a := range aets {
		if a == "DCM4CHEE" {
			return a
		}
	}
	return aets[0]
}

// dcm4chee2 identifies the dcm4chee 2.x web UI (dcm4chee-web3), which answers every page with
// its login form (servlet FORM authentication, realm dcm4chee). Under DefaultCreds it posts the
// documented admin:admin to j_security_check: success is the redirect back to the page asked for,
// failure the login page again. It counts nothing.
func (s *session) dcm4chee2(ctx context.Context, _ *response) (probe.Web, bool) {
	w := probe.Web{URL: s.url("/dcm4chee-web3/"), Product: ProductDcm4chee2}
	// The session cookie of the login page is needed to log in; only this check keeps cookies.
	c := s.client
	if s.p.cfg.DefaultCreds {
		jar, _ := cookiejar.New(nil) // never fails with nil options
		c = &http.Client{Transport: s.tr, CheckRedirect: sameOrigin, Jar: jar}
	}
	r, err := s.do(ctx, c, http.MethodGet, "/dcm4chee-web3/", nil, nil, "", maxHTML)
	if err != nil || !isDcm4chee2(r) {
		return w, false
	}
	w.Auth = authOf(r)
	if r.status == http.StatusOK && strings.Contains(string(r.body), "j_security_check") {
		w.Auth = probe.AuthBasic // a login form: asks for credentials, as probe.AuthBasic means
	}
	if w.Auth != probe.AuthBasic || !s.p.cfg.DefaultCreds || ctx.Err() != nil {
		return w, true
	}
	login := &http.Client{Transport: s.tr, Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	form := url.Values{"j_username": {dcm4chee2Default.user}, "j_password": {dcm4chee2Default.pass}}
	r, err = s.do(ctx, login, http.MethodPost, "/dcm4chee-web3/j_security_check", form, nil, "", maxHTML)
	if err == nil && formLoginOK(r) {
		w.Auth = probe.AuthDefaultCreds
	}
	return w, true
}

// isDcm4chee2 reports whether r is a page of dcm4chee-web3: its login form names the dcm4chee
// web packages in its resource paths.
func isDcm4chee2(r *response) bool {
	b := strings.ToLower(string(r.body))
	return r.status == http.StatusOK && strings.Contains(b, "org.dcm4chee.web")
}

// formLoginOK reports whether a servlet FORM login succeeded: the container redirects to the page
// first asked for; on failure it shows the error page (here the login page with loginFailed).
func formLoginOK(r *response) bool {
	if r.status != http.StatusFound && r.status != http.StatusSeeOther {
		return false
	}
	loc := strings.ToLower(r.header.Get("Location"))
	return loc != "" && !strings.Contains(loc, "login")
}

// dicoogle identifies Dicoogle by its web UI's title and asks /ext/version for the version.
// Dicoogle's login is made by its web application, not by HTTP: the probe cannot tell whether
// its API is open, and says AuthUnknown.
func (s *session) dicoogle(ctx context.Context, root *response) (probe.Web, bool) {
	w := probe.Web{URL: s.url("/"), Product: ProductDicoogle, Auth: probe.AuthUnknown}
	if root.status != http.StatusOK || !strings.Contains(strings.ToLower(htmlTitle(root.body)), "dicoogle") {
		return w, false
	}
	if r, err := s.get(ctx, "/ext/version", nil, s.p.cfg.MaxBody); err == nil && r.status == http.StatusOK {
		w.Version, _ = parseVersion(r.body)
	}
	return w, true
}

// ohif identifies the OHIF viewer by its page title, or by the app-config.js its page loads
// (window.config). The viewer holds no images: counts stay 0.
func (s *session) ohif(ctx context.Context, root *response) (probe.Web, bool) {
	w := probe.Web{URL: s.url("/"), Product: ProductOHIF, Auth: probe.AuthNone}
	if root.status != http.StatusOK {
		return w, false
	}
	if strings.Contains(strings.ToLower(htmlTitle(root.body)), "ohif") {
		return w, true
	}
	if !strings.Contains(string(root.body), "app-config.js") {
		return w, false
	}
	r, err := s.get(ctx, "/app-config.js", nil, maxHTML)
	return w, err == nil && r.status == http.StatusOK && strings.Contains(string(r.body), "window.config")
}

// qido sends a QIDO-RS Search for Studies (PS3.18 §10.6.1) for one study and one allow-listed key.
// Only maxQIDO bytes of the answer are read, to check its shape.
func (s *session) qido(ctx context.Context, path string, cred *credential) (*response, error) {
	return s.do(ctx, s.client, http.MethodGet, path+qidoQuery, nil, cred, qidoAccept, maxQIDO)
}

// authOf classifies how the answer r protects what was asked: answered is AuthNone, a 401 with
// a challenge asks for credentials (AuthBasic, whatever the scheme), anything else is unknown.
func authOf(r *response) probe.Auth {
	switch {
	case r.status >= 200 && r.status < 300:
		return probe.AuthNone
	case r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") != "":
		return probe.AuthBasic
	}
	return probe.AuthUnknown
}
