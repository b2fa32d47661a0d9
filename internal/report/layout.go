package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// Region kinds of a memory map: the colours of the drawing.
const (
	RegionExe      = "exe"      // the process's executable
	RegionLib      = "lib"      // other mapped files (libraries, data files)
	RegionHeap     = "heap"     // [heap]
	RegionStack    = "stack"    // stacks (the initial one, threads')
	RegionAnon     = "anon"     // private anonymous memory
	RegionJIT      = "jit"      // anonymous memory that is executable
	RegionShared   = "shared"   // shared anonymous memory, memfd, SysV shm
	RegionSpecial  = "special"  // vdso, vvar, vsyscall, AIO rings
	RegionReserved = "reserved" // PROT_NONE: reservations and guard pages
)

// RegionKinds lists the kinds in the order of the legend.
var RegionKinds = []string{RegionExe, RegionLib, RegionHeap, RegionStack, RegionAnon, RegionJIT, RegionShared, RegionSpecial, RegionReserved}

// Region is one mapping to draw.
type Region struct {
	Start, End uint64
	Prot       uint32
	Shared     bool
	Name       string // the mapping's name as grep gives it (path, [heap], ...)
	Kind       string // Region*
	Captured   uint64 // bytes the checkpoint holds
	// Density, if set, returns the captured bytes of [s, e) within the
	// mapping (called once per pixel column of a mapping wider than a
	// pixel).
	Density func(s, e uint64) uint64
}

// Point is an address to mark on a map.
type Point struct {
	Addr  uint64
	Class string // "hit" or "finding"
	Title string
}

// Geometry of the drawing (SVG user units).
const (
	mapWidth    = 1000 // width of the drawn address space per row
	labelWidth  = 118  // left margin with the row's first address
	rowHeight   = 46
	bandTop     = 10 // marks above the band
	bandHeight  = 28
	maxRows     = 12
	gapMarker   = 10 // width of a compressed gap
	gapMaxPx    = 24 // gaps wider than this (at scale) are compressed
	maxMarks    = 500
	densityStep = 8 // levels of captured density
	// minBytesPerPixel is the finest scale.
	minBytesPerPixel = 256
	// shortenedWidth is the width of a long untouched PROT_NONE mapping.
	shortenedWidth = 90
	// minJITWidth is the least width of executable anonymous memory.
	minJITWidth = 3
)

// Shape is one element of a drawn map.
type Shape struct {
	X, Y, W, H float64
	Class      string
	Title      string
	Label      string // text drawn inside (wide regions)
	Gap        bool   // a compressed gap (drawn as a zigzag)
	Mark       bool   // a mark (drawn as a triangle)
}

// XS and the others format the coordinates for the SVG (one decimal).
func (s Shape) XS() string  { return num(s.X + labelWidth) }
func (s Shape) YS() string  { return num(s.Y) }
func (s Shape) WS() string  { return num(s.W) }
func (s Shape) HS() string  { return num(s.H) }
func (s Shape) X2S() string { return num(s.X + labelWidth + s.W) }
func (s Shape) YM() string  { return num(s.Y + s.H/2) }
func (s Shape) Y2S() string { return num(s.Y + s.H) }

// Path is the SVG path of a gap marker or a mark.
func (s Shape) Path() string {
	x := s.X + labelWidth
	if s.Mark {
		return fmt.Sprintf("M%s %sl-4 -8h8z", num(x), num(s.Y+s.H))
	}
	// Two zigzags: the address space is cut here.
	var b strings.Builder
	for _, dx := range []float64{2, s.W - 4} {
		fmt.Fprintf(&b, "M%s %s", num(x+dx), num(s.Y))
		for i := 0; i < 4; i++ {
			fmt.Fprintf(&b, "l2 %sl-2 %s", num(s.H/8), num(s.H/8))
		}
	}
	return b.String()
}

func num(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%.1f", f)
}

// RowLabel is the address at the start of a row.
type RowLabel struct {
	Y    float64
	Text string
}

// YS formats the label's baseline.
func (l RowLabel) YS() string { return num(l.Y + bandTop + bandHeight/2 + 4) }

// Map is the drawing of one address space: mappings to scale (BytesPerPixel
// bytes per unit), wrapped into rows, big gaps compressed.
type Map struct {
	Width, Height  int
	BytesPerPixel  uint64
	Regions        int // mappings drawn
	Aggregated     int // mappings drawn within aggregates (below a pixel)
	CompressedGaps int
	// ShortenedRegions counts untouched PROT_NONE mappings drawn
	// shorter than to scale.
	ShortenedRegions int
	Shapes           []Shape
	Bars             []Shape // captured density
	Marks            []Shape
	Rows             []RowLabel
	MarksDropped     int
}

// anchor places a mapping on the strip: u0..u1 in pixels.
type anchor struct {
	start, end uint64
	u0, u1     float64
}

// Layout draws regions (sorted by address, not overlapping) and marks.
func Layout(regions []Region, points []Point) *Map {
	m := &Map{Width: mapWidth + labelWidth, Regions: len(regions)}
	budget := float64(mapWidth * maxRows)
	// A small address space fills at most one row, at a page per unit or
	// finer; a larger one takes up to maxRows rows, at the finest scale
	// that fits. Scales are 2^k and 1.5*2^k bytes per unit, so that the
	// drawing fills two thirds of its rows at least.
	bpp := uint64(minBytesPerPixel)
	for bpp < 4096 && length(regions, bpp, budget) > mapWidth {
		bpp = nextScale(bpp)
	}
	for range 128 {
		if length(regions, bpp, budget) <= budget || bpp > math.MaxUint64/4 {
			break
		}
		bpp = nextScale(bpp)
	}
	m.BytesPerPixel = bpp
	mw := markerWidth(regions, bpp, budget)
	fb := float64(bpp)

	anchors := make([]anchor, 0, len(regions))
	u := 0.0
	var agg *aggregate
	flush := func() {
		if agg == nil {
			return
		}
		a := agg
		agg = nil
		m.Aggregated += a.n
		kind := a.kind()
		title := fmt.Sprintf("%d mappings %#x-%#x (each below a pixel)\n%s mapped, %s captured", a.n, a.start, a.end, Size(a.bytes), Size(a.captured))
		m.emit(a.u0, a.u1, bandTop, bandHeight, "k-"+kind+" r", title, "", true)
		if a.bytes > 0 && a.captured > 0 {
			lvl := level(float64(a.captured) / float64(a.bytes))
			m.emitBar(a.u0, a.u1, lvl, kind)
		}
	}
	for i := range regions {
		r := &regions[i]
		if i > 0 {
			gap := r.Start - regions[i-1].End
			if g := float64(gap) / fb; g > gapMaxPx {
				flush()
				m.CompressedGaps++
				m.emitGap(u, u+mw, fmt.Sprintf("unmapped %#x-%#x: %s, not to scale", regions[i-1].End, r.Start, Size(gap)))
				u += mw
			} else {
				u += g
			}
		}
		size := r.End - r.Start
		w, shortened := regionWidth(r, fb)
		anchors = append(anchors, anchor{r.Start, r.End, u, u + w})
		if shortened {
			flush()
			m.ShortenedRegions++
			m.emit(u, u+w, bandTop, bandHeight, "k-"+r.Kind+" r b", regionTitle(r)+"\nnever touched: drawn shortened, not to scale", fit(Size(size)+" PROT_NONE", int((w-12)/6.2)), false)
			m.emitGap(u+w-gapMarker, u+w, "")
			u += w
			continue
		}
		if w < 1 && r.Kind == RegionJIT {
			flush()
			m.Shapes = append(m.Shapes, m.split(u+w/2-minJITWidth/2, u+w/2+minJITWidth/2, bandTop-2, bandHeight+4, "k-jit jit", regionTitle(r), "")...)
			m.density(r, u, w, bpp)
			u += w
			continue
		}
		if w < 1 {
			if agg == nil {
				agg = &aggregate{u0: u, start: r.Start, kinds: map[string]uint64{}}
			}
			agg.add(r, u+w)
			if agg.u1-agg.u0 >= 1 {
				flush()
			}
			u += w
			continue
		}
		flush()
		label := ""
		if w >= 60 {
			label = fit(r.Name, int(w/6.2))
		}
		m.emit(u, u+w, bandTop, bandHeight, "k-"+r.Kind+" r b", regionTitle(r), label, false)
		if r.Kind == RegionJIT && w < minJITWidth {
			// Executable anonymous memory is what an investigator looks
			// for: never thinner than minJITWidth (drawn over its
			// neighbours; the scale is kept).
			m.Shapes = append(m.Shapes, m.split(u+w/2-minJITWidth/2, u+w/2+minJITWidth/2, bandTop-2, bandHeight+4, "k-jit jit", regionTitle(r), "")...)
		}
		m.density(r, u, w, bpp)
		u += w
	}
	flush()
	rows := int(math.Ceil(u / mapWidth))
	if rows < 1 {
		rows = 1
	}
	for i := 0; i < rows; i++ {
		m.Rows = append(m.Rows, RowLabel{Y: float64(i * rowHeight), Text: fmt.Sprintf("%#x", addrAt(anchors, float64(i*mapWidth)))})
	}
	m.Height = rows*rowHeight + 4
	// Marks, at most maxMarks.
	sort.Slice(points, func(i, j int) bool { return points[i].Addr < points[j].Addr })
	for _, p := range points {
		pu, ok := uAt(anchors, p.Addr)
		if !ok {
			continue
		}
		if len(m.Marks) >= maxMarks {
			m.MarksDropped++
			continue
		}
		row := math.Floor(pu / mapWidth)
		if row >= float64(rows) {
			row = float64(rows - 1)
		}
		m.Marks = append(m.Marks, Shape{X: pu - row*mapWidth, Y: row * rowHeight, H: bandTop + 2, Class: p.Class, Title: p.Title, Mark: true})
	}
	return m
}

// nextScale is the scale after b in 256, 384, 512, 768, 1024, ...
func nextScale(b uint64) uint64 {
	if b&(b-1) == 0 {
		return b + b/2
	}
	return b / 3 * 4
}

// length is the strip's length in pixels at bpp.
func length(regions []Region, bpp uint64, budget float64) float64 {
	mw := markerWidth(regions, bpp, budget)
	fb := float64(bpp)
	u := 0.0
	for i := range regions {
		if i > 0 {
			g := float64(regions[i].Start-regions[i-1].End) / fb
			if g > gapMaxPx {
				g = mw
			}
			u += g
		}
		w, _ := regionWidth(&regions[i], fb)
		u += w
	}
	return u
}

// regionWidth is the width of r at fb bytes per unit: to scale, but for
// a PROT_NONE mapping with nothing captured (a reservation, a guard)
// wider than shortenedWidth, which is cut to that width (shortened).
func regionWidth(r *Region, fb float64) (w float64, shortened bool) {
	w = float64(r.End-r.Start) / fb
	if r.Kind == RegionReserved && r.Captured == 0 && w > shortenedWidth {
		return shortenedWidth, true
	}
	return w, false
}

// markerWidth is the width of a compressed gap: gapMarker, less when the
// markers would take more than a quarter of the budget.
func markerWidth(regions []Region, bpp uint64, budget float64) float64 {
	n := 0
	for i := 1; i < len(regions); i++ {
		if float64(regions[i].Start-regions[i-1].End)/float64(bpp) > gapMaxPx {
			n++
		}
	}
	if n > 0 && float64(n)*gapMarker > budget/4 {
		return budget / 4 / float64(n)
	}
	return gapMarker
}

// aggregate is a run of mappings each below a pixel, drawn as one.
type aggregate struct {
	u0, u1          float64
	start, end      uint64
	n               int
	bytes, captured uint64
	kinds           map[string]uint64
}

func (a *aggregate) add(r *Region, u1 float64) {
	a.n++
	a.end = r.End
	a.u1 = u1
	a.bytes += r.End - r.Start
	a.captured += r.Captured
	a.kinds[r.Kind] += r.End - r.Start
}

// kind is the kind with the most bytes.
func (a *aggregate) kind() string {
	best, n := RegionAnon, uint64(0)
	for _, k := range RegionKinds {
		if a.kinds[k] > n {
			best, n = k, a.kinds[k]
		}
	}
	return best
}

// level quantizes a density to densityStep levels (0 only for none).
func level(f float64) int {
	l := int(math.Ceil(f * densityStep))
	return max(0, min(densityStep, l))
}

// density draws the captured bytes of r per pixel column, adjacent
// columns of the same level merged.
func (m *Map) density(r *Region, u, w float64, bpp uint64) {
	if r.Captured == 0 {
		return
	}
	size := r.End - r.Start
	if r.Captured >= size || r.Density == nil {
		m.emitBar(u, u+w, level(float64(r.Captured)/float64(size)), r.Kind)
		return
	}
	cols := int(math.Ceil(w))
	runStart, runLevel := 0, -1
	for c := 0; c <= cols; c++ {
		lvl := -1
		if c < cols {
			s := r.Start + uint64(float64(c)*float64(bpp))
			e := min(r.End, r.Start+uint64(float64(c+1)*float64(bpp)))
			if e > s {
				lvl = level(float64(r.Density(s, e)) / float64(e-s))
			}
		}
		if lvl != runLevel {
			if runLevel > 0 {
				m.emitBar(u+float64(runStart), min(u+float64(c), u+w), runLevel, r.Kind)
			}
			runStart, runLevel = c, lvl
		}
	}
}

func (m *Map) emitBar(u0, u1 float64, lvl int, kind string) {
	if lvl <= 0 {
		return
	}
	h := float64(bandHeight) * float64(lvl) / densityStep
	m.Bars = append(m.Bars, m.split(u0, u1, bandTop+bandHeight-h, h, "d k-"+kind, "", "")...)
}

func (m *Map) emitGap(u0, u1 float64, title string) {
	for _, s := range m.split(u0, u1, bandTop-3, bandHeight+6, "gap", title, "") {
		s.Gap = true
		m.Shapes = append(m.Shapes, s)
	}
}

func (m *Map) emit(u0, u1, y, h float64, class, title, label string, minPixel bool) {
	if minPixel && u1-u0 < 1 {
		u1 = u0 + 1
	}
	m.Shapes = append(m.Shapes, m.split(u0, u1, y, h, class, title, label)...)
}

// split cuts [u0, u1) of the strip at row ends.
func (m *Map) split(u0, u1, y, h float64, class, title, label string) []Shape {
	var out []Shape
	for u0 < u1 {
		row := math.Floor(u0 / mapWidth)
		end := min(u1, (row+1)*mapWidth)
		x := u0 - row*mapWidth
		out = append(out, Shape{X: x, Y: row*rowHeight + y, W: end - u0, H: h, Class: class, Title: title, Label: label})
		label = ""
		if end-u0 <= 0 {
			break
		}
		u0 = end
	}
	return out
}

// uAt places addr on the strip.
func uAt(anchors []anchor, addr uint64) (float64, bool) {
	i := sort.Search(len(anchors), func(i int) bool { return anchors[i].end > addr })
	if i == len(anchors) || anchors[i].start > addr {
		return 0, false
	}
	a := anchors[i]
	return a.u0 + (a.u1-a.u0)*float64(addr-a.start)/float64(a.end-a.start), true
}

// addrAt is the address at strip position u (the first mapping from u).
func addrAt(anchors []anchor, u float64) uint64 {
	i := sort.Search(len(anchors), func(i int) bool { return anchors[i].u1 > u })
	if i == len(anchors) {
		if len(anchors) == 0 {
			return 0
		}
		return anchors[len(anchors)-1].end
	}
	a := anchors[i]
	if u <= a.u0 || a.u1 == a.u0 {
		return a.start
	}
	off := uint64(float64(a.end-a.start) * (u - a.u0) / (a.u1 - a.u0))
	return (a.start + off) &^ 0xfff
}

func regionTitle(r *Region) string {
	pct := 0.0
	if r.End > r.Start {
		pct = 100 * float64(r.Captured) / float64(r.End-r.Start)
	}
	return fmt.Sprintf("%#x-%#x %s %s\n%s mapped, %s captured (%.0f%%)", r.Start, r.End, Prot(r.Prot, r.Shared), Visible(r.Name), Size(r.End-r.Start), Size(r.Captured), pct)
}

// fit shortens a path to its last n characters (its base name first).
func fit(s string, n int) string {
	s = Visible(s)
	if i := strings.LastIndexByte(s, '/'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	if len(s) <= n {
		return s
	}
	if n < 2 {
		return ""
	}
	return s[:n-1] + "…"
}

// Prot renders protection bits as /proc/PID/maps does ("r-xp").
func Prot(prot uint32, shared bool) string {
	if shared {
		return inspect.Prot(prot) + "s"
	}
	return inspect.Prot(prot) + "p"
}

// Size renders a byte count for people (KiB, MiB, GiB).
func Size(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Visible makes control characters and invalid UTF-8 of a checkpoint
// string visible as \xNN (HTML escaping is the template's).
func Visible(s string) string {
	ok := true
	for _, r := range s {
		if r == 0xfffd || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == 0xfffd && n <= 1 || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			for j := 0; j < n; j++ {
				fmt.Fprintf(&b, `\x%02x`, s[i+j])
			}
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
