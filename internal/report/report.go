// Package report renders a checkpoint as one self-contained HTML file an
// investigator can open from disk, share and read: the container and
// CRIU's dump statistics, the process tree, each process's memory map
// drawn to scale as SVG (regions coloured by kind, captured density,
// compressed gaps, marked addresses), threads, files and sockets, the
// container's changed files, findings and artifacts.
//
// Build gathers the facts (inspect's Report, each process's mappings and
// the captured bytes of their pages, the hits of the patterns to mark);
// Document.Write renders them with html/template: every string from the
// checkpoint is escaped, and a Content-Security-Policy forbids every
// network request and every script and style but the document's own.
package report

import (
	"fmt"
	"sort"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/memsearch"
)

// DeletedType is the type inspect gives the paths of deleted.files in
// Report.RootfsDiff.
const DeletedType = "deleted"

// MaxHits bounds the hits of one pattern kept per process.
const MaxHits = 1000

// Mark is a pattern whose hits are placed on the memory maps.
type Mark struct {
	Name    string // as the user wrote it
	Matcher memsearch.Matcher
}

// Finding is one finding of a rule (triage), with its evidence. Pid and
// Addr place it on a memory map (Addr 0: on none).
type Finding struct {
	Pid      uint32
	Addr     uint64
	Severity string
	Rule     string
	Summary  string
	Evidence []string
}

// Artifact is a file recovered from the checkpoint (carve) and its hash.
type Artifact struct {
	Name   string
	Kind   string
	Pid    uint32 // the first process holding it; 0 if none
	Size   int64
	SHA256 string
	Source string // the image entry it was carved from
}

// Options are what Build adds to inspect's report.
type Options struct {
	Marks     []Mark
	Findings  []Finding
	Artifacts []Artifact
	// Notes are more addresses to place on the maps (a comparison's
	// changed mappings).
	Notes []Note
}

// Note is an address of a process to mark on its map, with hover text.
type Note struct {
	Pid   uint32
	Addr  uint64
	Title string
}

// Hit is one hit of a mark.
type Hit struct {
	Mark    string
	Addr    uint64
	Mapping string
	Offset  uint64
	Context string // the hit and its context, non-printable bytes as '.'
}

// ProcessView is what the report shows of one process beyond inspect's
// Process.
type ProcessView struct {
	inspect.Process
	Map      *Map // nil: no memory (zombie, unreadable mm)
	Hits     []Hit
	HitsMore int // hits not kept (MaxHits)
	Findings []Finding
	Children []uint32
	Problems []string // what the report could not draw or search
}

// Document is everything the report shows.
type Document struct {
	*inspect.Report
	Views     []*ProcessView
	Roots     []uint32 // processes whose parent is not in the checkpoint
	Marks     []string
	Findings  []Finding
	Artifacts []Artifact
	// Changed and Deleted split inspect's RootfsDiff: the files of the
	// rw layer, and the paths of deleted.files (type "deleted").
	Changed []inspect.DiffFile
	Deleted []string
}

// Build gathers the report of ck, whose inspect report is rep. A process
// that cannot be loaded keeps inspect's facts, without a map.
func Build(ck *criuimg.Checkpoint, rep *inspect.Report, opts Options) *Document {
	d := &Document{Report: rep, Findings: opts.Findings, Artifacts: opts.Artifacts}
	for _, f := range rep.RootfsDiff {
		if f.Type == DeletedType {
			d.Deleted = append(d.Deleted, f.Path)
		} else {
			d.Changed = append(d.Changed, f)
		}
	}
	for _, mk := range opts.Marks {
		d.Marks = append(d.Marks, mk.Name)
	}
	byPid := map[uint32]*ProcessView{}
	for i := range rep.Processes {
		v := &ProcessView{Process: rep.Processes[i]}
		for _, f := range opts.Findings {
			if f.Pid == v.Pid {
				v.Findings = append(v.Findings, f)
			}
		}
		var notes []Point
		for _, n := range opts.Notes {
			if n.Pid == v.Pid {
				notes = append(notes, Point{Addr: n.Addr, Class: "note", Title: n.Title})
			}
		}
		buildProcess(ck, v, opts.Marks, notes)
		d.Views = append(d.Views, v)
		byPid[v.Pid] = v
	}
	d.tree(byPid)
	return d
}

// MaxTreeDepth bounds the nesting of the process tree: the descendants of
// a process this deep are listed under it, one level down, whatever their
// depth (a chain of a million processes nests no further).
const MaxTreeDepth = 32

// tree sets Roots and each view's Children.
func (d *Document) tree(byPid map[uint32]*ProcessView) {
	kids := map[uint32][]uint32{}
	for _, v := range d.Views {
		if _, ok := byPid[v.PPid]; ok && v.PPid != v.Pid {
			kids[v.PPid] = append(kids[v.PPid], v.Pid)
		} else {
			d.Roots = append(d.Roots, v.Pid)
		}
	}
	type item struct {
		pid    uint32
		depth  int
		attach *ProcessView // the view whose Children list pid
	}
	seen := map[uint32]bool{}
	var stack []item
	for i := len(d.Roots) - 1; i >= 0; i-- {
		stack = append(stack, item{pid: d.Roots[i]})
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[it.pid] {
			continue
		}
		seen[it.pid] = true
		v := byPid[it.pid]
		if it.attach != nil {
			it.attach.Children = append(it.attach.Children, it.pid)
		}
		next, depth := v, it.depth+1
		if it.depth > MaxTreeDepth {
			next, depth = it.attach, it.depth
		}
		c := kids[it.pid]
		for i := len(c) - 1; i >= 0; i-- {
			stack = append(stack, item{pid: c[i], depth: depth, attach: next})
		}
	}
}

// View returns the view of pid.
func (d *Document) View(pid uint32) *ProcessView {
	for _, v := range d.Views {
		if v.Pid == pid {
			return v
		}
	}
	return nil
}

func buildProcess(ck *criuimg.Checkpoint, v *ProcessView, marks []Mark, notes []Point) {
	if v.State == "zombie" {
		return
	}
	p, _ := ck.SalvageProcess(v.Pid) // its problems are inspect's warnings
	if p == nil {
		return
	}
	defer p.Close()
	if len(p.VMAs) == 0 {
		return
	}
	regions := make([]Region, 0, len(p.VMAs))
	for i := range p.VMAs {
		vma := &p.VMAs[i]
		r := Region{Start: vma.Start, End: vma.End, Prot: vma.Prot, Shared: vma.Shared(),
			Name: memsearch.MappingName(p, vma), Kind: regionKind(p, vma)}
		if p.Mem != nil {
			var err error
			r.Captured, err = captured(p.Mem, vma, vma.Start, vma.End)
			if err != nil {
				v.Problems = append(v.Problems, fmt.Sprintf("mapping %#x-%#x: %v", vma.Start, vma.End, err))
			}
			mem := p.Mem
			r.Density = func(s, e uint64) uint64 {
				n, _ := captured(mem, vma, s, e)
				return n
			}
		}
		regions = append(regions, r)
	}
	points := notes
	if p.Mem != nil {
		for _, mk := range marks {
			n := 0
			err := (memsearch.Searcher{Context: memsearch.DefaultContext}).Search(p, mk.Matcher, func(h memsearch.Hit) error {
				if n >= MaxHits {
					v.HitsMore++
					return nil
				}
				n++
				hit := Hit{Mark: mk.Name, Addr: h.Addr, Mapping: h.Mapping, Offset: h.Offset, Context: printable(h.Before, h.Match, h.After)}
				v.Hits = append(v.Hits, hit)
				points = append(points, Point{Addr: h.Addr, Class: "hit", Title: fmt.Sprintf("%s at %#x\n%s+%#x\n%s", Visible(mk.Name), h.Addr, Visible(h.Mapping), h.Offset, hit.Context)})
				return nil
			})
			if err != nil {
				v.Problems = append(v.Problems, fmt.Sprintf("searching %q: %v", mk.Name, err))
			}
		}
	}
	for _, f := range v.Findings {
		if f.Addr != 0 {
			points = append(points, Point{Addr: f.Addr, Class: "finding", Title: fmt.Sprintf("%s: %s\n%#x", Visible(f.Rule), Visible(f.Summary), f.Addr)})
		}
	}
	sort.SliceStable(v.Hits, func(i, j int) bool { return v.Hits[i].Addr < v.Hits[j].Addr })
	v.Map = Layout(regions, points)
}

// captured counts the captured bytes of [s, e) of vma.
func captured(m *criuimg.Memory, vma *criuimg.VMA, s, e uint64) (uint64, error) {
	var n uint64
	err := m.Extents(max(s, vma.Start), min(e, vma.End), func(x criuimg.Extent) error {
		if x.Kind == criuimg.Captured {
			n += x.End - x.Start
		}
		return nil
	})
	return n, err
}

// regionKind classifies a mapping for the drawing: criuimg's kinds, with
// file mappings split into the executable and the rest, and anonymous
// memory into executable (JIT, shellcode), PROT_NONE and the rest.
func regionKind(p *criuimg.Process, v *criuimg.VMA) string {
	switch k := p.VMAKind(v); {
	case k.Special():
		return RegionSpecial
	case k == criuimg.KindHeap:
		return RegionHeap
	case k == criuimg.KindStack:
		return RegionStack
	case k == criuimg.KindShared:
		return RegionShared
	case k == criuimg.KindFile:
		if p.ExePath != "" && v.Path == p.ExePath {
			return RegionExe
		}
		return RegionLib
	}
	switch {
	case v.Prot&criuimg.ProtExec != 0:
		return RegionJIT
	case v.Prot == 0:
		return RegionReserved
	}
	return RegionAnon
}

// printable renders bytes with non-printable ones as '.'.
func printable(parts ...[]byte) string {
	var b []byte
	for _, p := range parts {
		for _, c := range p {
			if c < 0x20 || c > 0x7e {
				c = '.'
			}
			b = append(b, c)
		}
	}
	return string(b)
}
