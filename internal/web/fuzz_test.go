package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/web"
)

// FuzzRequest: any request a client sends to serve (path, query, the token header) gets an
// answer — never a panic — with a status the dashboard uses, and no answer echoes the token.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{"/", "/runs/1", "/api/v1/runs", "/api/v1/scans/1/report", "/api/v1/hosts/127.0.0.2",
		"/hosts/127.0.0.2", "/api/v1/hosts/zzz%00", "/runs/%2e%2e/etc", "/api/v1/scans/" + strings.Repeat("9", 300) + "/hosts?page=-1",
		"/runs/1/IN/Karnataka?page=99999999999999999999", "/metrics", "/static/../../x"} {
		f.Add(seed, "Bearer secret")
	}
	st, _ := twoScans(f)
	srv, err := web.New(web.Config{Store: st, Token: "secret"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	f.Fuzz(func(t *testing.T, target, auth string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return // not a request line net/http would hand over
		}
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1"+target, nil)
		if err != nil {
			return
		}
		if auth != "" && !strings.ContainsAny(auth, "\r\n") {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusFound, http.StatusSeeOther, http.StatusMovedPermanently, http.StatusNotModified,
			http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusMethodNotAllowed,
			http.StatusAccepted, http.StatusServiceUnavailable, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			t.Fatalf("GET %q: status %d", target, rec.Code)
		}
		if auth != "Bearer secret" && strings.Contains(rec.Body.String(), "secret") {
			t.Fatalf("GET %q with a wrong token: the answer holds the token", target)
		}
	})
}
