package report

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

var (
	//go:embed style.css
	style string
	//go:embed script.js
	script string
	//go:embed report.html.tmpl
	page string
	//go:embed map.html.tmpl
	mapPage string
)

// CSP is the document's Content-Security-Policy: nothing may be fetched
// (no default source, no images, fonts, frames or connections); the one
// style sheet and the one script are allowed by their hashes, nothing
// else runs (no inline handlers, no style attributes).
func CSP() string {
	return fmt.Sprintf("default-src 'none'; style-src '%s'; script-src '%s'; img-src 'none'; font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'",
		hash(style), hash(script))
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}

var funcs = template.FuncMap{
	"v":    Visible,
	"hex":  func(a uint64) string { return fmt.Sprintf("%#x", a) },
	"size": Size,
	"us":   func(n uint32) string { return (time.Duration(n) * time.Microsecond).String() },
	"args": args,
	"short": func(a []string) string {
		s := Visible(strings.Join(a, " "))
		if r := []rune(s); len(r) > 90 {
			return string(r[:89]) + "…"
		}
		return s
	},
	"deref":   func(p *uint32) uint32 { return *p },
	"deref64": func(p *int64) int64 { return *p },
	"kindName": func(k string) string {
		return map[string]string{RegionExe: "executable", RegionLib: "libraries, files", RegionHeap: "heap", RegionStack: "stack",
			RegionAnon: "anonymous", RegionJIT: "anonymous executable (JIT)", RegionShared: "shared", RegionSpecial: "vdso, vvar", RegionReserved: "PROT_NONE"}[k]
	},
	"node": func(d *Document, pid uint32) node { return node{D: d, V: d.View(pid)} },
}

// node is one process of the tree and the document it is in.
type node struct {
	D *Document
	V *ProcessView
}

var tmpl = template.Must(template.Must(template.New("report").Funcs(funcs).Parse(page)).Parse(mapPage))

// quoteArg quotes an argument that holds spaces or quotes, as a shell
// would read it.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t'\"\\$`") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// page is what the template renders.
type pageData struct {
	*Document
	CSP    string
	Style  template.CSS
	Script template.JS
	Kinds  []string
}

// Write renders the document as one HTML file.
func (d *Document) Write(w io.Writer) error {
	return tmpl.Execute(w, pageData{Document: d, CSP: CSP(), Style: template.CSS(style), Script: template.JS(script), Kinds: RegionKinds})
}

// args renders a command line as a shell would take it, trailing empty
// arguments (an argument area overwritten with NULs) counted, not shown.
func args(a []string) string {
	n := len(a)
	for n > 1 && a[n-1] == "" {
		n--
	}
	q := make([]string, n)
	for i, s := range a[:n] {
		q[i] = quoteArg(Visible(s))
	}
	out := strings.Join(q, " ")
	if n < len(a) {
		out += fmt.Sprintf(" (and %d empty arguments)", len(a)-n)
	}
	return out
}
