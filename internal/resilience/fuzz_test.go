package resilience

import (
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// A package parses untrusted bytes, and so must have a native fuzz target with seeds (STYLE.md
// "Tests"), when it is listed in mustFuzz, or when its non-test files import one of fuzzMarkers
// and it is not exempt. The list names what each package parses; the markers catch new packages
// that talk to peers or decode foreign formats before anyone remembers to list them.
var (
	mustFuzz = map[string]string{
		"internal/dicom":            "PS3.5 data sets and command sets from the network",
		"internal/dicom/ul":         "PS3.8 PDUs from the network",
		"internal/dicom/dimse":      "PS3.7 command sets and C-FIND identifiers",
		"internal/dicom/scp":        "requests from any client (the sim serves them on loopback)",
		"internal/probe/webprobe":   "HTTP responses of web front ends",
		"internal/probe/dicomprobe": "C-FIND responses, dates, AE dictionary files",
		"internal/targets":          "targets and exclusions from command lines and files",
		"internal/store/sqlite":     "database files, which may be corrupt or not ours",
		"internal/geo":              "MaxMind DB files a user brings",
		"internal/guard":            "PDUs, command sets and identifiers from any client of the guard",
		"internal/web":              "HTTP requests from any client of serve (paths, queries, the token)",
		"internal/guard/policy":     "policy files (YAML) a user writes",
	}
	fuzzMarkers = map[string]string{
		"net":                   "reads bytes from peers",
		"net/http":              "reads HTTP from peers",
		"crypto/tls":            "reads TLS records and certificates from peers",
		"encoding/xml":          "decodes XML",
		"encoding/asn1":         "decodes ASN.1",
		"compress/gzip":         "inflates data",
		"compress/flate":        "inflates data",
		"compress/zlib":         "inflates data",
		"archive/zip":           "reads archives",
		"archive/tar":           "reads archives",
		"mime/multipart":        "reads multipart bodies",
		"golang.org/x/net/html": "parses HTML",
		"github.com/oschwald/maxminddb-golang/v2": "reads MaxMind DB files",
	}
	fuzzExempt = map[string]string{
		"bench/convert":            "benchmark tool: reads the XML of nmap runs made by bench/run.sh itself",
		"bench/guardbench":         "benchmark tool: talks to the SCP and guard it starts itself on loopback",
		"bench/rawconnect":         "benchmark tool: opens and closes connections, reads nothing",
		"internal/dicom/dicomtest": "test wrapper: serves package scp, fuzzed itself, on loopback",
		"internal/geo/mmdbwrite":   "writes databases with mmdbwriter (the demo's, the tests'), reads none",
		"internal/guard/syslog":    "writes to a syslog collector, reads nothing from it",
		"internal/peertest":        "test harness: talks to the Orthanc, dcmqrscp and storescp it started itself",
		"internal/store/postgres":  "talks to the user's own PostgreSQL through pgx (its wire parser is pgx's); reads back only what pacswatch wrote",
		"internal/audit":           "drives dicomprobe's session steps (fuzzed there); writes JUnit XML and SARIF, reads none",
		"internal/cli":             "flags and wiring: serve's HTTP server is internal/web's (fuzzed there), the probers' parsing theirs",
		"internal/watch":           "sends alerts: of a webhook receiver's answer it reads only the status code, of SMTP net/smtp's replies",
		"internal/scan":            "opens connections for the probers (Dialer: rate, descriptor budget) and reads no byte from them",
	}
)

// pkgFuzz is what fuzzInventory finds in one package.
type pkgFuzz struct {
	path    string            // relative to the module root, slash-separated
	reason  string            // why it must be fuzzed; empty: it need not be
	targets map[string]int    // fuzz target → seeds (f.Add calls and committed corpus files)
	missing []string          // what is wrong: no target, a target without seeds
	imports map[string]string // markers it imports → what they mean
}

// fuzzInventory walks the Go packages under root (a module root) and reports, for each, whether it
// must be fuzzed and what fuzz targets and seeds it has. exempt is consulted only for packages the
// markers flag, never for listed ones.
func fuzzInventory(root string, listed, markers, exempt map[string]string) ([]pkgFuzz, error) {
	var out []pkgFuzz
	err := filepath.WalkDir(root, func(dir string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if dir != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
			return filepath.SkipDir
		}
		bp, err := build.Default.ImportDir(dir, 0)
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return err
		}
		p := pkgFuzz{path: filepath.ToSlash(rel), targets: map[string]int{}, imports: map[string]string{}}
		for _, imp := range bp.Imports {
			if why, ok := markers[imp]; ok {
				p.imports[imp] = why
			}
		}
		switch why, ok := listed[p.path]; {
		case ok:
			p.reason = why
		case len(p.imports) > 0 && exempt[p.path] == "":
			var imps []string
			for imp := range p.imports {
				imps = append(imps, imp)
			}
			sort.Strings(imps)
			p.reason = "imports " + strings.Join(imps, ", ")
		}
		files := slices.Concat(bp.TestGoFiles, bp.XTestGoFiles)
		for _, f := range files {
			if err := fuzzTargets(filepath.Join(dir, f), p.targets); err != nil {
				return err
			}
		}
		for target := range p.targets {
			corpus, _ := os.ReadDir(filepath.Join(dir, "testdata", "fuzz", target))
			p.targets[target] += len(corpus)
		}
		if p.reason != "" {
			if len(p.targets) == 0 {
				p.missing = append(p.missing, "no fuzz target")
			}
			for target, seeds := range p.targets {
				if seeds == 0 {
					p.missing = append(p.missing, target+" has no seeds (f.Add or testdata/fuzz/"+target+")")
				}
			}
			sort.Strings(p.missing)
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// fuzzTargets adds the fuzz targets of a test file to targets, each with the number of calls to
// its *testing.F's Add method in its body.
func fuzzTargets(file string, targets map[string]int) error {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return err
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Fuzz") || fn.Body == nil {
			continue
		}
		params := fn.Type.Params.List
		if len(params) != 1 || len(params[0].Names) != 1 {
			continue
		}
		star, ok := params[0].Type.(*ast.StarExpr)
		if !ok {
			continue
		}
		if sel, ok := star.X.(*ast.SelectorExpr); !ok || sel.Sel.Name != "F" {
			continue
		}
		fv := params[0].Names[0].Name
		seeds := 0
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Add" {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == fv {
					seeds++
				}
			}
			return true
		})
		targets[fn.Name.Name] += seeds
	}
	return nil
}

// TestEveryParserFuzzed fails when a package that parses untrusted bytes has no native fuzz
// target, or a fuzz target without seeds. scripts/fuzz.sh runs every target in CI.
func TestEveryParserFuzzed(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	pkgs, err := fuzzInventory(root, mustFuzz, fuzzMarkers, fuzzExempt)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.path] = true
		if p.reason == "" {
			continue
		}
		var ts []string
		for target, seeds := range p.targets {
			ts = append(ts, fmt.Sprintf("%s (%d seeds)", target, seeds))
		}
		sort.Strings(ts)
		t.Logf("%-26s %s: %s", p.path, p.reason, strings.Join(ts, ", "))
		for _, m := range p.missing {
			t.Errorf("%s parses untrusted bytes (%s): %s", p.path, p.reason, m)
		}
	}
	for _, m := range []map[string]string{mustFuzz, fuzzExempt} {
		for p := range m {
			if !seen[p] && !strings.HasPrefix(p, "bench/") {
				t.Errorf("%s is listed here but is no package of the module: update the list", p)
			}
		}
	}
}

// TestFuzzInventory checks the classification on packages made up for it.
func TestFuzzInventory(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.test\n\ngo 1.26\n")
	write("listed/a.go", "package listed\n")
	write("net/a.go", "package net\n\nimport _ \"net\"\n")
	write("net/a_test.go", "package net\n\nimport \"testing\"\n\nfunc FuzzRead(f *testing.F) { f.Add([]byte{1}); f.Add([]byte{2}); f.Fuzz(func(*testing.T, []byte) {}) }\n")
	write("noseed/a.go", "package noseed\n\nimport _ \"compress/gzip\"\n")
	write("noseed/a_test.go", "package noseed_test\n\nimport \"testing\"\n\nfunc FuzzX(g *testing.F) { g.Fuzz(func(*testing.T, []byte) {}) }\nfunc FuzzY(f *testing.F) { f.Fuzz(func(*testing.T, []byte) {}) }\n")
	write("noseed/testdata/fuzz/FuzzY/seed-1", "go test fuzz v1\n[]byte(\"a\")\n")
	write("exempt/a.go", "package exempt\n\nimport _ \"net/http\"\n")
	write("plain/a.go", "package plain\n\nimport _ \"strings\"\n")
	write("plain/a_test.go", "package plain\n\nimport \"testing\"\n\nfunc FuzzNotReally(t *testing.T) {}\n")
	write("testdata/ignored/a.go", "package ignored\n\nimport _ \"net\"\n")

	pkgs, err := fuzzInventory(root, map[string]string{"listed": "files"}, fuzzMarkers, map[string]string{"exempt": "why not"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range pkgs {
		var ts []string
		for target, seeds := range p.targets {
			ts = append(ts, fmt.Sprintf("%s:%d", target, seeds))
		}
		sort.Strings(ts)
		got[p.path] = fmt.Sprintf("reason=%q targets=%v missing=%v", p.reason, ts, p.missing)
	}
	want := map[string]string{
		"listed": `reason="files" targets=[] missing=[no fuzz target]`,
		"net":    `reason="imports net" targets=[FuzzRead:2] missing=[]`,
		"noseed": `reason="imports compress/gzip" targets=[FuzzX:0 FuzzY:1] missing=[FuzzX has no seeds (f.Add or testdata/fuzz/FuzzX)]`,
		"exempt": `reason="" targets=[] missing=[]`,
		"plain":  `reason="" targets=[] missing=[]`,
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s:\n got %s\nwant %s", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok { // testdata/ignored among them
			t.Errorf("unexpected package %s: %s", p, got[p])
		}
	}
}
