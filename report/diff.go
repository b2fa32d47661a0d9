package report

import (
	_ "embed"
	"html/template"
	"io"

	"github.com/ckpt2core/ckpt2core/ckptdiff"
)

//go:embed diff.html.tmpl
var diffPage string

var diffTmpl = template.Must(template.New("diff").Funcs(funcs).Funcs(template.FuncMap{"mark": changeMark}).Parse(diffPage))

// changeMark is the marker of a kind of change, as the text of diff has it.
func changeMark(change string) string {
	switch change {
	case ckptdiff.Added:
		return "+"
	case ckptdiff.Removed, ckptdiff.Deleted:
		return "−"
	case ckptdiff.Unchanged:
		return "="
	}
	return "~"
}

// WriteDiff renders the comparison of two checkpoints (ckptdiff's
// Result) as one HTML file, under the same rules as Document.Write.
func WriteDiff(w io.Writer, r *ckptdiff.Result) error {
	return diffTmpl.Execute(w, struct {
		R      *ckptdiff.Result
		CSP    string
		Style  template.CSS
		Script template.JS
	}{r, CSP(), template.CSS(style), template.JS(script)})
}
