package report_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/report"
)

// TestWriteMapSVG: the map alone is the HTML report's map, byte for byte, and only a country
// table makes one.
func TestWriteMapSVG(t *testing.T) {
	st := fixtureStore(t)
	g, a := fixtureGeo(t)
	r, err := report.Build(context.Background(), st, report.Options{Geo: g, ASN: a})
	if err != nil {
		t.Fatal(err)
	}
	var page, svg bytes.Buffer
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	var countries *report.Table
	for i := range r.Tables {
		if r.Tables[i].Group == report.GroupCountry {
			countries = &r.Tables[i]
		} else if err := report.WriteMapSVG(&bytes.Buffer{}, r.Tables[i]); err == nil {
			t.Errorf("WriteMapSVG of the %s table: no error", r.Tables[i].Group)
		}
	}
	if countries == nil {
		t.Fatal("no country table")
	}
	if err := report.WriteMapSVG(&svg, *countries); err != nil {
		t.Fatal(err)
	}
	s := svg.String()
	if !strings.HasPrefix(s, `<svg class="map"`) || !strings.HasSuffix(s, "</svg>") || strings.Count(s, "<svg") != 1 {
		t.Errorf("map is not one svg element: %.80q…", s)
	}
	if !strings.Contains(page.String(), s) {
		t.Error("the map alone differs from the report's map")
	}
	if !strings.Contains(s, `class="s`) {
		t.Error("no country shaded by accessible studies")
	}
}
