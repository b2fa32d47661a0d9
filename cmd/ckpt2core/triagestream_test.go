package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	criusa "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-sa"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/carve"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

// plainTar writes the tar inside the compressed archive at path (gzip or
// zstd, by content) into dir and returns its path.
func plainTar(t *testing.T, path, dir string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	} else {
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "plain.tar")
	if err := os.WriteFile(out, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// readsCheckpoint writes, into a new directory, a checkpoint whose
// findings read what the fixtures' do not: the injection page and a
// second captured run of a program's text (two modified-code runs), and
// an anonymous executable mapping with two captured runs and a signal
// handler and the thread's PC in the second one (outside the first run's
// excerpt), and an LD_PRELOAD more than a page into the environment.
func readsCheckpoint(t *testing.T) string {
	t.Helper()
	const rx = criuimg.ProtRead | criuimg.ProtExec
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(1, 0)
	p.Comm = "app"
	p.SetExe("/usr/bin/app")
	p.AddVMA(0x400000, 0x404000, rx, 0, 0, "/usr/bin/app")
	page := func(s string) []byte {
		b := make([]byte, 4096)
		for i := range b {
			b[i] = s[i%len(s)]
		}
		return b
	}
	p.AddPages(0x400000, append(page("INJECT"), page("PATCH1")...), criuimg.PEPresent)
	p.AddPages(0x403000, page("PATCH2"), criuimg.PEPresent)
	p.AddVMA(0x7f0000000000, 0x7f0000004000, rx, 0, 0, "")
	p.AddPages(0x7f0000000000, page("ANONX1"), criuimg.PEPresent)
	p.AddPages(0x7f0000003000, page("HANDLR"), criuimg.PEPresent)
	// LD_PRELOAD more than a page into the environment area.
	p.SetArgsEnv([]string{"/usr/bin/app", "--serve"}, []string{"FILLER=" + strings.Repeat("f", 6000), "LD_PRELOAD=/tmp/x.so"})
	// The thread's PC in the anonymous code, away from the handler.
	p.Threads[0].Core.ThreadInfo.Gpregs.Ip = proto.Uint64(0x7f0000003100)
	for len(p.Task.Sigactions) < 62 {
		p.Task.Sigactions = append(p.Task.Sigactions, &criusa.SaEntry{Sigaction: proto.Uint64(0), Flags: proto.Uint64(0), Restorer: proto.Uint64(0), Mask: proto.Uint64(0)})
	}
	p.Task.Sigactions[9-1].Sigaction = proto.Uint64(0x7f0000003800) // signal 10 (9 is not recorded)
	return c.WriteTemp(t)
}

// TestTriageStreamSame: triage of a compressed archive, streamed (only the
// pages that inspect and the rules read kept), prints exactly what it
// prints for the plain tar (never streamed) and, for the intrusion
// fixture, for the directory the tar unpacks to and for the tar
// recompressed with gzip: stdout (text and --json), the warnings on
// stderr and the exit status, with --image (every captured code page
// compared with the image's files) and with --pid. The intrusion
// fixture's findings read anonymous and patched code, a memfd's contents,
// two bash heaps and argument areas: a range the retention missed shows
// as a shorter excerpt, a missing sha256 or history, or a warning.
func TestTriageStreamSame(t *testing.T) {
	dir := t.TempDir()
	after := imgtest.IntrusionArchive("after.tar.zst")
	ref := plainTar(t, after, dir)
	gz := filepath.Join(dir, "after.tar.gz")
	{
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		raw, _ := os.ReadFile(ref)
		w.Write(raw)
		w.Close()
		os.WriteFile(gz, b.Bytes(), 0o600)
	}
	unpacked := filepath.Join(dir, "unpacked")
	{
		f, err := os.Open(ref)
		if err != nil {
			t.Fatal(err)
		}
		untarAll(t, f, unpacked)
		f.Close()
	}
	pdir := filepath.Join(dir, "podman")
	os.Mkdir(pdir, 0o700)
	podZstd := filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz")
	podGzip := filepath.Join(podmanDir, "checkpoint-counters_default-counter-gzip.tar.gz")
	image := imgtest.IntrusionArchive("image-oci.tar")
	type tc struct {
		ref   string
		forms []string
		flags []string
	}
	cases := []tc{
		{ref, []string{after, gz, unpacked}, nil},
		{ref, []string{after, gz}, []string{"--image", image}},
		{ref, []string{after}, []string{"--pid", "68", "--pid", "44"}},
		{plainTar(t, podZstd, pdir), []string{podZstd}, nil},
	}
	gdir := filepath.Join(dir, "podman-gzip")
	os.Mkdir(gdir, 0o700)
	cases = append(cases, tc{plainTar(t, podGzip, gdir), []string{podGzip}, nil})
	synth := readsCheckpoint(t)
	synthZstd := filepath.Join(dir, "synth.tar.zst")
	writeTarZstdOrder(t, synth, synthZstd, false)
	cases = append(cases, tc{synth, []string{synthZstd}, nil})
	triageOf := func(path string, flags []string) string {
		var out, errb bytes.Buffer
		code := run(append(append([]string{"triage"}, flags...), path), &out, &errb)
		return fmt.Sprintf("exit %d\n%s\n--- stderr\n%s", code, out.String(), errb.String())
	}
	for _, c := range cases {
		for _, j := range [][]string{nil, {"--json"}} {
			flags := append(append([]string(nil), c.flags...), j...)
			want := triageOf(c.ref, flags)
			if !strings.Contains(want, "exit 4") && !strings.Contains(want, "exit 0") {
				t.Fatalf("%s %v: %s", c.ref, flags, want)
			}
			for _, f := range c.forms {
				if got := triageOf(f, flags); got != want {
					t.Errorf("triage %v %s differs from the plain tar's:\n%s\nwant:\n%s", flags, f, got, want)
				}
			}
		}
	}
	// The intrusion fixture's planted findings are there (the comparison
	// above is not between two empty reports).
	got := triageOf(after, nil)
	for _, s := range []string{"INTRV_ANONX_", "INTRV_RWX_", "shell-history", "sha256 9fddde2c"} {
		if !strings.Contains(got, s) {
			t.Errorf("streamed triage of %s lacks %q", after, s)
		}
	}
	got = triageOf(synthZstd, nil)
	for _, s := range []string{"|INJECT", "|PATCH1", "|PATCH2", "|ANONX1", "|NDLRHANDLR"} {
		if !strings.Contains(got, s) {
			t.Errorf("streamed triage of the synthetic checkpoint lacks %q:\n%s", s, got)
		}
	}
}

// recordingSource records the byte ranges read of each pages image.
type recordingSource struct {
	criuimg.Source
	mu    sync.Mutex
	reads map[string][][2]int64
}

func (r *recordingSource) Open(name string) (criuimg.File, error) {
	f, err := r.Source.Open(name)
	if err != nil || !strings.HasPrefix(name, "pages-") {
		return f, err
	}
	return &recordingFile{File: f, r: r}, nil
}

type recordingFile struct {
	criuimg.File
	r *recordingSource
}

func (f *recordingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if n > 0 {
		f.r.mu.Lock()
		f.r.reads[f.Name()] = append(f.r.reads[f.Name()], [2]int64{off, off + int64(n)})
		f.r.mu.Unlock()
	}
	return n, err
}

// TestTriageReadsCover runs inspect and triage's rules, and for report
// carve too, on every fixture with a source that records each byte they
// read of a pages image, and checks that every one lies in what
// retainReads would keep of that image (triageReads, reportReads, per
// process): the rules and triage.Reads / inspect.Reads / carve.Reads
// cannot drift apart unnoticed, on the servers' JIT code, shared memory
// and bash heaps as on the intrusion fixture.
func TestTriageReadsCover(t *testing.T) {
	paths := []string{imgtest.IntrusionArchive("after.tar.zst"), filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz")}
	dirs, _ := filepath.Glob(imgtest.Testdata("*", "*", "images"))
	servers, _ := filepath.Glob(imgtest.Testdata("x86_64", "servers", "*", "images"))
	paths = append(append(paths, dirs...), servers...)
	paths = append(paths, readsCheckpoint(t))
	if len(paths) < 10 {
		t.Fatalf("fixtures not found: %v", paths)
	}
	for _, path := range paths {
		t.Run(strings.TrimPrefix(path, imgtest.Testdata()+"/"), func(t *testing.T) {
			if !strings.HasPrefix(path, imgtest.Testdata()) {
				t.Log("(the synthetic checkpoint)")
			}
			a, err := archive.Open(path, archive.Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			rec := &recordingSource{Source: a.Images, reads: map[string][][2]int64{}}
			ck, err := criuimg.SalvageOpen(rec)
			if err != nil {
				t.Fatal(err)
			}
			iopts := inspect.Options{Env: true, Meta: a.Meta()}
			topts := triage.Options{}
			for _, cmd := range []string{"triage", "report"} {
				reads := triageReads(iopts, topts)
				if cmd == "report" {
					reads = reportReads(true, true)
				}
				checkReadsCover(t, cmd, ck, rec, reads, func() int {
					rep, err := inspect.Inspect(ck, iopts)
					if err != nil {
						t.Fatal(err)
					}
					findings, _ := triage.Run(ck, rep, topts)
					n := len(findings)
					if cmd == "report" {
						carve.Carve(ck, carve.Options{Report: rep}, func(a carve.Artifact) error {
							n++
							rc, err := a.Open()
							if err == nil {
								io.Copy(io.Discard, rc)
								rc.Close()
							}
							return nil
						}, nil)
					}
					return n
				})
			}
		})
	}
}

// checkReadsCover checks that what run reads of the pages images of ck
// (through rec) lies in what reads says cmd reads.
func checkReadsCover(t *testing.T, cmd string, ck *criuimg.Checkpoint, rec *recordingSource, reads pageReads, run func() int) {
	t.Helper()
	keep := pagesKeep{}
	for _, info := range ck.Procs {
		p, _ := ck.SalvageProcess(info.Pid)
		if p == nil {
			continue
		}
		for name, rs := range readsOf(ck, p, reads) {
			keep[name] = append(keep[name], rs...)
		}
		p.Close()
	}
	rec.mu.Lock()
	clear(rec.reads)
	rec.mu.Unlock()
	found := run()
	read := 0
	for name, rs := range rec.reads {
		kept, told := keep[name]
		if !told {
			continue // not told: kept whole
		}
		kept = merged(kept)
		for _, r := range rs {
			read++
			if !coveredBy(kept, r) {
				t.Errorf("%s: %s: [%d, %d) read but not kept (kept %v)", cmd, name, r[0], r[1], kept)
			}
		}
	}
	if read == 0 {
		t.Errorf("%s: no pages read at all (%d findings or artifacts)", cmd, found)
	}
}

// coveredBy reports whether r lies within the merged ranges rs.
func coveredBy(rs [][2]int64, r [2]int64) bool {
	for _, k := range rs {
		if k[0] <= r[0] && r[1] <= k[1] {
			return true
		}
	}
	return false
}

// TestTriageStreamTruncated: triage of the intrusion fixture's zstd
// archive cut short names the archive and what is wrong, exits 1, prints
// nothing and leaves nothing in its TMPDIR; so do report, extract and
// cat (no page or directory left either), and list skips it.
func TestTriageStreamTruncated(t *testing.T) {
	b, err := os.ReadFile(imgtest.IntrusionArchive("after.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, cut := range []int{len(b) / 2, len(b) - 100} {
		p := filepath.Join(dir, "cut.tar.zst")
		os.WriteFile(p, b[:cut], 0o600)
		// The other commands that stream as triage does (openRetaining,
		// openWithoutPages): the same, but list, which skips a
		// checkpoint it cannot read (exit 0, no row, the archive named).
		for _, tc := range []struct {
			args    []string
			code    int
			written string // a file the command must not leave
			stdout  string
		}{
			{[]string{"triage", p}, exitFailed, "", ""},
			{[]string{"report", p, "-o", filepath.Join(dir, "r.html")}, exitFailed, "r.html", ""},
			{[]string{"extract", p, "-o", filepath.Join(dir, "x")}, exitFailed, "x", ""},
			{[]string{"cat", p, "/etc/crontabs/root"}, exitFailed, "", ""},
			{[]string{"list", "--json", p}, exitOK, "", "[]\n"},
		} {
			tmp := privateTmp(t)
			t.Setenv("TMPDIR", tmp)
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), "cut.tar.zst") || out.String() != tc.stdout {
				t.Errorf("%s, cut at %d: exit %d, stdout %q, stderr %q; want %d, %q, the archive named", tc.args[0], cut, code, out.String(), errb.String(), tc.code, tc.stdout)
			}
			if tc.written != "" {
				if _, err := os.Lstat(filepath.Join(dir, tc.written)); err == nil {
					t.Errorf("%s, cut at %d: %s written", tc.args[0], cut, tc.written)
				}
			}
			if left := leftIn(t, tmp); len(left) != 0 {
				t.Errorf("%s, cut at %d: left in TMPDIR: %v", tc.args[0], cut, left)
			}
		}
	}
}

// TestTriageStreamDisk runs the real binary's triage on a zstd archive
// with 128 MiB of pages (names sorted, pstree.img after the pages) and
// watches what it holds in TMPDIR: never more than 32 MiB (the whole
// pages file would be 128 MiB). With the pages before every other image
// (nothing can be worked out before they stream) the pages are spooled
// whole, and -v says so; the findings are the same.
func TestTriageStreamDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and two 128 MiB archives")
	}
	bin := buildBinary(t)
	var outs []string
	for _, pagesFirst := range []bool{false, true} {
		tmp := t.TempDir()
		arch := largeArchive(t, tmp, pagesFirst)
		work := privateTmp(t)
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, "triage", "-v", "--json", arch)
		cmd.Stdout, cmd.Stderr = &out, &errb
		peak, err := runPeak(t, cmd, work)
		if err != nil {
			t.Fatalf("triage: %v\n%s", err, errb.String())
		}
		spooled := strings.Contains(errb.String(), "spooled whole")
		switch {
		case !pagesFirst && (peak > 32<<20 || spooled):
			t.Errorf("held %d bytes in TMPDIR while triaging (want <= 32 MiB), stderr %q", peak, errb.String())
		case pagesFirst && (peak < 100<<20 || !spooled):
			t.Errorf("pages first: held %d bytes (want the whole pages file), stderr %q: -v does not say it was spooled", peak, errb.String())
		}
		t.Logf("pages first %v: peak %d bytes in TMPDIR; stderr %q", pagesFirst, peak, errb.String())
		outs = append(outs, out.String())
	}
	if outs[0] != outs[1] {
		t.Errorf("findings differ with the pages first:\n%s\n%s", outs[0], outs[1])
	}
}

// TestTriageStreamLateProcess: a process whose mm image comes after the
// pages in the archive is not in the provisional tree; it maps shared
// memory that another process's retention cut down to what that one
// reads. Triage notices it once the stream has ended, reads the archive
// again unpacked whole (-v says so), and reports what it reports for the
// directory: pid 2's excerpt of the shared memory is there.
func TestTriageStreamLateProcess(t *testing.T) {
	dir, arch := lateArchive(t)
	var want, werr, got, gerr bytes.Buffer
	wcode := run([]string{"triage", dir}, &want, &werr)
	gcode := run([]string{"triage", "-v", arch}, &got, &gerr)
	if !strings.Contains(want.String(), "SHARED-TWO") || !strings.Contains(want.String(), "SHARED-ONE") {
		t.Fatalf("the directory's triage lacks the shared excerpts:\n%s", want.String())
	}
	if got.String() != want.String() || gcode != wcode {
		t.Errorf("streamed: exit %d\n%s\nwant exit %d\n%s", gcode, got.String(), wcode, want.String())
	}
	if !strings.Contains(gerr.String(), "pids 2: ") || !strings.Contains(gerr.String(), "reading it again") {
		// Only if the stream ran 32 MiB ahead before the provisional
		// tree was made (a very loaded machine): pid 2 was in it.
		t.Logf("-v does not say the archive was read again (pid 2 in the provisional tree?): %q", gerr.String())
	}
	// inspect too: pid 2's instruction is decoded from the shared memory.
	instruction := func(path string) string {
		var out, errb bytes.Buffer
		if code := run([]string{"inspect", "--json", "--pid", "2", path}, &out, &errb); code != exitOK {
			t.Fatalf("inspect %s: exit %d: %s", path, code, errb.String())
		}
		var rep inspect.Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Processes) != 1 || len(rep.Processes[0].Threads) != 1 {
			t.Fatalf("inspect %s: %v\n%s", path, err, out.String())
		}
		return rep.Processes[0].Threads[0].Instruction
	}
	if w, g := instruction(dir), instruction(arch); w == "" || g != w {
		t.Errorf("inspect: pid 2's instruction %q streamed, %q from the directory", g, w)
	}
}

// lateArchive writes a checkpoint whose pid 2's mm image comes after the
// pages in a zstd archive; pid 2 maps shared memory that pid 1 maps too
// (TestTriageStreamLateProcess). It returns the image directory and the
// archive.
func lateArchive(t *testing.T) (string, string) {
	t.Helper()
	const rx = criuimg.ProtRead | criuimg.ProtExec
	c := imgtest.New(imgtest.X86_64)
	s := c.AddShmem(5, 0x4000)
	page := func(m string) []byte { return bytes.Repeat([]byte(m), 4096/len(m)) }
	s.AddPages(0, page("SHARED-ONE"+strings.Repeat(".", 6)), criuimg.PEPresent)
	s.AddPages(0x3000, page("SHARED-TWO"+strings.Repeat(".", 6)), criuimg.PEPresent)
	for _, pid := range []uint32{1, 2} {
		p := c.AddProcess(pid, 0)
		if pid == 2 {
			p.PPid = 1
		}
		p.SetArgs([]string{fmt.Sprintf("/usr/bin/app%d", pid)})
		p.MapShmem(0x7f0000000000, s, uint64(pid-1)*0x3000, rx)
		if pid == 2 {
			// inspect decodes the code at its PC, in the shared memory.
			p.Threads[0].Core.ThreadInfo.Gpregs.Ip = proto.Uint64(0x7f0000000100)
		}
		if pid == 1 {
			// 32 MiB that nothing reads, streaming first: the provisional
			// tree is made (Ahead) long before the stream reaches mm-2.img.
			p.AddAnon(0x10000000, 0x12000000)
			p.AddPagesFunc(0x10000000, 0x2000, func(int, []byte) {})
		}
	}
	dir := c.WriteTemp(t)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names, pages []string
	for _, e := range ents {
		switch {
		case strings.HasPrefix(e.Name(), "pages-"):
			pages = append(pages, e.Name())
		case e.Name() != "mm-2.img":
			names = append(names, e.Name())
		}
	}
	size := func(n string) int64 {
		st, _ := os.Stat(filepath.Join(dir, n))
		return st.Size()
	}
	slices.SortFunc(pages, func(a, b string) int { return cmp.Compare(size(b), size(a)) }) // the largest first
	names = append(append(names, pages...), "mm-2.img")                                    // after every pages file
	arch := filepath.Join(t.TempDir(), "late.tar.zst")
	writeImagesArchive(t, dir, arch, "zstd", names)
	return dir, arch
}

// TestReportStreamDisk runs the real binary's report (findings and
// artifacts) on a zstd archive with 128 MiB of pages in Podman's order
// and watches TMPDIR: at most 32 MiB (unpacked whole: 128 MiB).
func TestReportStreamDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a 128 MiB archive")
	}
	bin := buildBinary(t)
	tmp := t.TempDir()
	arch := largeArchive(t, tmp, false)
	work := privateTmp(t)
	var errb bytes.Buffer
	cmd := exec.Command(bin, "report", arch, "-o", filepath.Join(tmp, "r.html"))
	cmd.Stderr = &errb
	peak, err := runPeak(t, cmd, work)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, errb.String())
	}
	if peak > 32<<20 {
		t.Errorf("held %d bytes in TMPDIR while reporting, want <= 32 MiB; stderr %q", peak, errb.String())
	}
	t.Logf("peak %d bytes in TMPDIR", peak)
}

// TestMetadataCommandsStream: list, extract and cat stream a compressed
// archive like triage, keeping of the pages only what they read (none
// for cat), and print what they print for the plain tar: list --json,
// extract's manifest and files (the intrusion fixture: ghost files, the
// memfd payload, bash's history, the rw layer) and cat of a file of the
// rw layer. On 128 MiB of pages in Podman's order, the real binary holds
// at most 32 MiB in TMPDIR for each (unpacked whole: 128 MiB).
func TestMetadataCommandsStream(t *testing.T) {
	dir := t.TempDir()
	forms := diffForms(t, intrusionAfter, dir, "after")
	type result struct{ out, files string }
	do := func(form string) map[string]result {
		t.Helper()
		p := forms[form]
		res := map[string]result{}
		for _, args := range [][]string{{"list", "--json", p}, {"cat", p, "/etc/crontabs/root"}, {"extract", p, "-o", filepath.Join(dir, "x-"+form)}} {
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != exitOK {
				t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
			}
			r := result{out: strings.ReplaceAll(stdout.String(), p, "CHECKPOINT")}
			// The kind and size of the archive file are list's to say;
			// the rest is the same.
			r.out = regexp.MustCompile(`"kind": "[^"]*"`).ReplaceAllString(r.out, `"kind": "K"`)
			r.out = regexp.MustCompile(`\n    "size": [0-9]+,`).ReplaceAllString(r.out, "\n    \"size\": N,")
			if args[0] == "extract" {
				r.out = strings.ReplaceAll(r.out, args[3], "OUT")
				var names []string
				filepath.WalkDir(args[3], func(path string, d fs.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() {
						b, _ := os.ReadFile(path)
						names = append(names, fmt.Sprintf("%s %x", strings.TrimPrefix(path, args[3]), sha256.Sum256(b)))
					}
					return nil
				})
				r.files = strings.Join(names, "\n")
				if !strings.Contains(r.files, "manifest.json") || len(names) < 10 {
					t.Fatalf("%s: extract wrote %d files: %s", form, len(names), r.files)
				}
			}
			res[args[0]] = r
		}
		return res
	}
	want := do("tar")
	for _, form := range []string{"tar.zst", "tar.gz"} {
		for cmd, got := range do(form) {
			if got != want[cmd] {
				t.Errorf("%s %s: differs from the plain tar's:\n%s\n%s\nplain:\n%s\n%s", cmd, form, got.out, got.files, want[cmd].out, want[cmd].files)
			}
		}
	}
	if testing.Short() {
		return
	}
	bin := buildBinary(t)
	arch := largeArchive(t, dir, false)
	for _, args := range [][]string{{"list", arch}, {"cat", arch, "/etc/passwd"}, {"extract", arch, "-o", filepath.Join(dir, "big")}} {
		work := privateTmp(t)
		var errb bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &errb
		peak, _ := runPeak(t, cmd, work) // cat: no rw layer, exit 1
		if peak > 32<<20 {
			t.Errorf("%s: held %d bytes in TMPDIR, want <= 32 MiB; stderr %q", args[0], peak, errb.String())
		}
		t.Logf("%s: peak %d bytes in TMPDIR", args[0], peak)
	}
}
