package geo

import (
	_ "embed"
	"strings"
	"sync"
)

// countries.tsv: ISO 3166-1 alpha-2 codes and English short names, generated from Debian's
// iso-codes by gen_countries.go.
//
//go:generate go run gen_countries.go -iso /usr/share/iso-codes/json/iso_3166-1.json -o countries.tsv
//go:embed countries.tsv
var countriesTSV string

var countryNames = sync.OnceValue(func() map[string]string {
	m := make(map[string]string, 256)
	for line := range strings.Lines(countriesTSV) {
		code, name, ok := strings.Cut(strings.TrimRight(line, "\n"), "\t")
		if ok && !strings.HasPrefix(code, "#") {
			m[code] = name
		}
	}
	return m
})

// CountryName returns the English short name of an ISO 3166-1 alpha-2 code ("IN": "India"),
// or "" for a code it does not know.
func CountryName(code string) string {
	return countryNames()[strings.ToUpper(code)]
}
