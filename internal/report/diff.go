package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"

	"github.com/ckpt2core/ckpt2core/internal/ckptdiff"
)

//go:embed diff.html.tmpl
var diffPage string

var diffTmpl = template.Must(template.Must(template.New("diff").Funcs(funcs).Funcs(template.FuncMap{"mark": changeMark}).Parse(diffPage)).Parse(mapPage))

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

// DiffNotes are the changed mappings of r's processes in B, to place on
// B's maps (Options.Notes).
func DiffNotes(r *ckptdiff.Result) []Note {
	var notes []Note
	for _, p := range r.Processes {
		if p.Memory == nil || p.Change == ckptdiff.Removed {
			continue
		}
		for _, m := range p.Memory.Mappings {
			if m.Change == ckptdiff.Removed || m.Change == ckptdiff.Unchanged {
				continue
			}
			notes = append(notes, Note{Pid: p.Pid, Addr: uint64(m.Start),
				Title: fmt.Sprintf("%s %s-%s %s\n%d pages changed, %d newly captured", m.Change, m.Start, m.End, Visible(m.Path), m.PagesChanged, m.PagesNewlyCaptured)})
		}
	}
	return notes
}

// WriteDiff renders the comparison of two checkpoints (ckptdiff's
// Result) as one HTML file, under the same rules as Document.Write. b,
// if not nil, is the document of B (Build with DiffNotes): the maps of
// the processes in B are drawn with their changed mappings marked.
func WriteDiff(w io.Writer, r *ckptdiff.Result, b *Document) error {
	maps := map[uint32]*Map{}
	if b != nil {
		for _, v := range b.Views {
			if v.Map != nil {
				maps[v.Pid] = v.Map
			}
		}
	}
	return diffTmpl.Execute(w, struct {
		R      *ckptdiff.Result
		Maps   map[uint32]*Map
		CSP    string
		Style  template.CSS
		Script template.JS
	}{r, maps, CSP(), template.CSS(style), template.JS(script)})
}
