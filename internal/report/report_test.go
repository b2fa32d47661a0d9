package report

import (
	"bytes"
	"html"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/ckptdiff"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/memsearch"
	"github.com/ckpt2core/ckpt2core/internal/synth"
)

// Hostile strings of a checkpoint: each must reach the page as text.
const (
	hostileComm = "<script>x()</script>"
	hostileArg  = "a\"b'c</svg><img src=x onerror=alert(1)>\x01\x1b[31m\xff"
	hostilePath = "/tmp/</title></svg><script>alert(2)</script>.so"
)

func render(t *testing.T, doc *Document) string {
	t.Helper()
	var b bytes.Buffer
	if err := doc.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func build(t *testing.T, c *imgtest.Checkpoint, opts Options) (*Document, string) {
	t.Helper()
	ck := imgtest.OpenDir(t, c.WriteTemp(t))
	rep, err := inspect.Inspect(ck, inspect.Options{Name: "hostile"})
	if err != nil {
		t.Fatal(err)
	}
	doc := Build(ck, rep, opts)
	return doc, render(t, doc)
}

// hostileCheckpoint is two processes whose comm, argv, executable and
// mapped file carry markup, quotes, control bytes and invalid UTF-8.
func hostileCheckpoint() *imgtest.Checkpoint {
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(1, 0)
	p.Comm = hostileComm
	p.SetExe(hostilePath)
	p.AddVMA(0x400000, 0x401000, criuimg.ProtRead|criuimg.ProtExec, 0, 0, hostilePath)
	p.SetArgs([]string{hostileComm, hostileArg})
	p.AddAnon(0x600000, 0x604000)
	p.AddPages(0x601000, []byte("xx SECRET<b>yy"), criuimg.PEPresent)
	q := c.AddProcess(2, 1)
	q.Comm = "child\"'&"
	q.SetArgs([]string{"child"})
	return c
}

func TestHostileStringsEscaped(t *testing.T) {
	m, err := memsearch.NewLiteral([]byte("SECRET<b>"), false)
	if err != nil {
		t.Fatal(err)
	}
	_, out := build(t, hostileCheckpoint(), Options{
		Marks:     []Mark{{Name: "SECRET<b>", Matcher: m}},
		Findings:  []Finding{{Pid: 1, Addr: 0x601003, Severity: "high", Rule: "<i>rule", Summary: hostileArg, Evidence: []string{hostilePath}}},
		Artifacts: []Artifact{{Name: hostilePath, SHA256: "00", Source: hostileComm}},
	})
	if n := strings.Count(out, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only the report's own", n)
	}
	for _, raw := range []string{"<img", "</svg><", "</title></svg>", "\x01", "\x1b", "\xff", "<i>", "SECRET<b>", `child"'&`} {
		if strings.Contains(out, raw) {
			t.Errorf("raw %q reached the document", raw)
		}
	}
	for _, esc := range []string{
		"&lt;script&gt;x()&lt;/script&gt;",                                   // comm
		`&lt;/svg&gt;&lt;img src=x onerror=alert(1)&gt;\x01\x1b[31m\xff`,     // argv: markup escaped, control bytes visible
		"&lt;/title&gt;&lt;/svg&gt;&lt;script&gt;alert(2)&lt;/script&gt;.so", // path
		"child&#34;&#39;&amp;",
		"SECRET&lt;b&gt; at 0x601003", // the mark's hover text
	} {
		if !strings.Contains(out, esc) {
			t.Errorf("escaped %q missing", esc)
		}
	}
	// The finding is in the findings table and on pid 1's map at its
	// address; the artifact is listed with its hash.
	for _, want := range []string{`<path class="finding"`, "&lt;i&gt;rule: ", `<a href="#p1">1</a>`, "<td class=\"mono\">00</td>"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q", want)
		}
	}
	// One </svg> per map: no string closed one early.
	if a, b := strings.Count(out, "<svg class=\"map\""), strings.Count(out, "</svg>"); a != 2 || b != a+2 { // +2: the legend's
		t.Errorf("%d maps, %d </svg>: want 2 and 4", a, b)
	}
}

func TestCSPHashesMatch(t *testing.T) {
	_, out := build(t, hostileCheckpoint(), Options{})
	csp := regexp.MustCompile(`http-equiv="Content-Security-Policy" content="([^"]*)"`).FindStringSubmatch(out)
	if csp == nil {
		t.Fatal("no CSP meta")
	}
	policy := html.UnescapeString(csp[1])
	for _, want := range []string{"default-src 'none'", "img-src 'none'", "connect-src 'none'"} {
		if !strings.Contains(policy, want) {
			t.Errorf("CSP %q lacks %q", policy, want)
		}
	}
	st := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(out)
	sc := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindStringSubmatch(out)
	if st == nil || sc == nil {
		t.Fatal("no style or script")
	}
	if !strings.Contains(policy, "style-src '"+hash(st[1])+"'") || !strings.Contains(policy, "script-src '"+hash(sc[1])+"'") {
		t.Errorf("CSP %q does not allow the document's style and script as written", policy)
	}
	for _, ext := range []string{"src=\"http", "href=\"http", "url(", "@import", " style=\""} {
		if strings.Contains(out, ext) {
			t.Errorf("document holds %q", ext)
		}
	}
}

func TestStructure(t *testing.T) {
	doc, out := build(t, hostileCheckpoint(), Options{})
	for _, v := range doc.Views {
		id := `id="p` + itoa(v.Pid) + `"`
		if !strings.Contains(out, `<details class="proc" `+id) {
			t.Errorf("no section %s", id)
		}
		if !strings.Contains(out, `<a href="#p`+itoa(v.Pid)+`">`) {
			t.Errorf("the tree does not link pid %d", v.Pid)
		}
	}
	if len(doc.Roots) != 1 || doc.Roots[0] != 1 || len(doc.View(1).Children) != 1 || doc.View(1).Children[0] != 2 {
		t.Errorf("tree: roots %v, children of 1: %v", doc.Roots, doc.View(1).Children)
	}
	// pid 1: the executable, the anonymous mapping with one captured page
	// of four, the stack of SetArgs.
	regions := map[string]int{}
	for _, s := range doc.View(1).Map.Shapes {
		for _, k := range RegionKinds {
			if strings.Contains(s.Class, "k-"+k+" ") {
				regions[k]++
			}
		}
	}
	if regions[RegionExe] != 1 || regions[RegionAnon] != 1 || regions[RegionStack] != 1 {
		t.Errorf("regions by kind %v, want one exe, anon, stack", regions)
	}
	if !strings.Contains(out, "0x600000-0x604000 rw-p [anon]\n16 KiB mapped, 4 KiB captured (25%)") {
		t.Error("no hover text for the anonymous mapping")
	}
}

func itoa(n uint32) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtUint(n)) }

func fmtUint(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestLayoutToScale checks the drawing against the mappings: widths in
// proportion to sizes, a big gap compressed, small gaps kept, density
// bars as high as the captured share.
func TestLayoutToScale(t *testing.T) {
	const mib = 256 << 10 // sizes that fit one row
	regions := []Region{
		{Start: 0x10000000, End: 0x10000000 + 1*mib, Kind: RegionExe, Name: "exe"},
		{Start: 0x10000000 + mib, End: 0x10000000 + 3*mib, Kind: RegionHeap, Name: "heap", Captured: mib}, // adjacent
		{Start: 0x7f0000000000, End: 0x7f0000000000 + 1*mib, Kind: RegionLib, Name: "lib", Captured: 1 * mib},
	}
	m := Layout(regions, []Point{{Addr: 0x10000000 + 2*mib, Class: "hit"}})
	var rs []Shape
	for _, s := range m.Shapes {
		if strings.Contains(s.Class, " r") {
			rs = append(rs, s)
		}
	}
	if len(rs) != 3 || m.CompressedGaps != 1 {
		t.Fatalf("%d regions, %d gaps compressed; want 3, 1", len(rs), m.CompressedGaps)
	}
	w := float64(mib) / float64(m.BytesPerPixel)
	if !near(rs[0].W, w) || !near(rs[1].W, 2*w) || !near(rs[2].W, w) || !near(rs[1].X, rs[0].X+w) {
		t.Errorf("widths %v %v %v at %v per unit, want %v, %v, %v", rs[0].W, rs[1].W, rs[2].W, m.BytesPerPixel, w, 2*w, w)
	}
	if !near(rs[2].X, rs[1].X+rs[1].W+gapMarker) {
		t.Errorf("lib at %v, want after a %d-unit gap marker", rs[2].X, gapMarker)
	}
	if len(m.Bars) != 2 || m.Bars[0].H != bandHeight/2 || m.Bars[1].H != bandHeight {
		t.Errorf("density bars %+v, want half and full height", m.Bars)
	}
	if len(m.Marks) != 1 || !near(m.Marks[0].X, rs[1].X+w) {
		t.Errorf("marks %+v, want one in the middle of the heap", m.Marks)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestManyMappings: a process of 60,000 mappings (internal/synth) draws
// in a bounded number of elements, every mapping accounted for.
func TestManyMappings(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 60,000-mapping checkpoint")
	}
	s := synth.ManyVMAs(60000, true)
	start := time.Now()
	doc, out := build(t, s.Checkpoint, Options{})
	m := doc.View(synth.Pid).Map
	if m == nil {
		t.Fatal("no map")
	}
	drawn := 0
	for _, sh := range m.Shapes {
		if strings.Contains(sh.Class, " b") {
			drawn++
		}
	}
	if m.Regions != 60001 || m.Aggregated+drawn < 60001-1 { // +1: the stack of SetArgs
		t.Errorf("%d regions, %d aggregated + %d drawn", m.Regions, m.Aggregated, drawn)
	}
	if n := len(m.Shapes) + len(m.Bars); n > 2*mapWidth*maxRows {
		t.Errorf("%d elements drawn", n)
	}
	if len(out) > 4<<20 {
		t.Errorf("document of %d bytes", len(out))
	}
	t.Logf("60,000 mappings: %d shapes, %d bars, %d bytes, %v", len(m.Shapes), len(m.Bars), len(out), time.Since(start))
}

// TestDiffEscaped: the strings of a comparison (from both checkpoints)
// stay text.
func TestDiffEscaped(t *testing.T) {
	r := &ckptdiff.Result{A: hostilePath, B: hostileComm,
		Container: &ckptdiff.ContainerDiff{Changed: []ckptdiff.Field{{Name: "hostname", Before: hostileArg, After: hostileComm}}},
		Processes: []ckptdiff.ProcessDiff{{Change: ckptdiff.Added, Pid: 7, Comm: hostileComm, Exe: hostilePath, Argv: []string{hostileArg},
			Env:    []ckptdiff.EnvChange{{Change: ckptdiff.Added, Name: "X", After: hostileArg}},
			Memory: &ckptdiff.MemoryDiff{NewStrings: []ckptdiff.NewString{{Text: "<script>alert(5)</script>", Mapping: hostilePath}}}}},
		Rootfs: []ckptdiff.RootfsChange{{Change: ckptdiff.Deleted, Path: hostilePath}},
		Memfds: []ckptdiff.MemfdChange{{Change: ckptdiff.Added, Name: hostileComm, Where: []string{hostileArg}}},
	}
	var b bytes.Buffer
	if err := WriteDiff(&b, r, nil); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only the report's own", n)
	}
	for _, raw := range []string{"<img", "</svg><", "\x01", "\xff", "alert(5)</script>"} {
		if strings.Contains(out, raw) {
			t.Errorf("raw %q reached the document", raw)
		}
	}
	if !strings.Contains(out, `id="d7-added"`) || !strings.Contains(out, `href="#d7-added"`) {
		t.Error("no linked section for the added process")
	}
}

// TestLayoutShortensReservations: an untouched PROT_NONE reservation is
// cut to shortenedWidth and said to be; a PROT_NONE mapping with captured
// bytes is not.
func TestLayoutShortensReservations(t *testing.T) {
	regions := []Region{
		{Start: 0x400000, End: 0x500000, Kind: RegionExe},
		{Start: 0x500000, End: 0x500000 + 1<<30, Kind: RegionReserved},
		{Start: 0x500000 + 1<<30, End: 0x600000 + 1<<30, Kind: RegionReserved, Captured: 4096},
	}
	m := Layout(regions, nil)
	if m.ShortenedRegions != 1 {
		t.Fatalf("%d shortened", m.ShortenedRegions)
	}
	w := float64(1<<20) / float64(m.BytesPerPixel)
	var widths []float64
	for _, s := range m.Shapes {
		if strings.Contains(s.Class, " r b") {
			widths = append(widths, s.W)
		}
	}
	if len(widths) != 3 || !near(widths[0], w) || widths[1] != shortenedWidth || !near(widths[2], w) {
		t.Errorf("widths %v at %d bytes per unit, want %v, %v, %v", widths, m.BytesPerPixel, w, shortenedWidth, w)
	}
}

// TestDeepTree: a chain of processes deeper than MaxTreeDepth nests no
// deeper, and every process is linked from the tree once.
func TestDeepTree(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	const n = 200
	for pid := uint32(1); pid <= n; pid++ {
		p := c.AddProcess(pid, pid-1)
		p.SetArgs([]string{"sh"})
	}
	_, out := build(t, c, Options{})
	tree := out[strings.Index(out, `<section id="tree">`):strings.Index(out, `<section id="processes">`)]
	depth, most := 0, 0
	for i := 0; i < len(tree); i++ {
		switch {
		case strings.HasPrefix(tree[i:], "<ul"):
			depth++
			most = max(most, depth)
		case strings.HasPrefix(tree[i:], "</ul>"):
			depth--
		}
	}
	if most != MaxTreeDepth+2 { // the top list, MaxTreeDepth levels, the flattened rest
		t.Errorf("tree nests %d lists, want %d", most, MaxTreeDepth+2)
	}
	for pid := uint32(1); pid <= n; pid++ {
		if k := strings.Count(tree, `<a href="#p`+fmtUint(pid)+`">`); k != 1 {
			t.Errorf("pid %d linked %d times", pid, k)
		}
	}
}
