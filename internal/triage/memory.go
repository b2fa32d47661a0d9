package triage

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// runtimes recognises the runtimes that generate code, by the base name
// of the executable or of a mapped library (prefix match).
var runtimes = []struct{ prefix, name string }{
	{"libjvm.so", "JVM"}, {"java", "JVM"},
	{"libnode.so", "V8 (node)"}, {"node", "V8 (node)"}, {"nodejs", "V8 (node)"}, {"libv8", "V8"},
	{"chrome", "V8 (Chromium)"}, {"electron", "V8 (Electron)"}, {"deno", "V8 (deno)"},
	{"libcoreclr.so", ".NET"}, {"libclrjit.so", ".NET"}, {"dotnet", ".NET"}, {"libmonosgen", "Mono"},
	{"libluajit", "LuaJIT"}, {"luajit", "LuaJIT"}, {"libpypy", "PyPy"}, {"pypy", "PyPy"},
	{"libjsc", "JavaScriptCore"}, {"libmozjs", "SpiderMonkey"}, {"beam.smp", "Erlang BEAM JIT"},
	{"qemu-", "QEMU TCG"}, {"libpcre2-8.so", ""}, // (pcre2's JIT: see jitLibs)
}

// jitLibs are libraries whose presence makes small JIT mappings expected
// without naming the process a runtime: pcre2 and libffi closures.
var jitLibs = []struct{ prefix, name string }{
	{"libpcre2-8.so", "PCRE2 JIT"}, {"libpcre.so", "PCRE JIT"}, {"libffi.so", "libffi closures"},
}

// runtimeOf names the code-generating runtime of p: by its executable's
// base name, else by a mapped library; "" if none.
func runtimeOf(p *criuimg.Process, ip *inspect.Process) string {
	exe := base(p.ExePath)
	for _, r := range runtimes {
		if r.name != "" && exe == r.prefix {
			return r.name
		}
	}
	var lib string
	for i := range p.VMAs {
		b := base(p.VMAs[i].Path)
		for _, r := range runtimes {
			if r.name != "" && strings.HasPrefix(b, r.prefix) && strings.Contains(r.prefix, ".so") {
				return r.name
			}
		}
		for _, r := range jitLibs {
			if lib == "" && strings.HasPrefix(b, r.prefix) {
				lib = r.name
			}
		}
	}
	return lib
}

// memoryRules: modified code, writable and executable memory, anonymous
// executable memory, executable deleted files and memfds.
func (t *run) memoryRules(p *criuimg.Process, pr Process, rt string) {
	sev := func() (Severity, string) {
		if rt != "" {
			return Info, rt
		}
		return High, ""
	}
	inject := injectionPage(p)
	checked := map[uint32]bool{}
	for i := range p.VMAs {
		v := &p.VMAs[i]
		examined, memfd, fileBacked := execMapping(p, v)
		if !examined {
			continue
		}
		switch {
		case memfd:
			// Reported with the memfd rule (exeRules): every executable
			// memfd mapping.
			t.add(Finding{Process: pr, Rule: RuleMemfdExe, Severity: High, Reason: "mapping", Subject: v.Path,
				Evidence: []Evidence{vmaEvidence(p, v), {Image: "memfd.img", Entry: fmt.Sprintf("shmid %d", v.Shmem), Mapping: v.Path}}})
		case fileBacked:
			if r, ok := t.deleted(v.FileID); ok {
				ev := append([]Evidence{vmaEvidence(p, v)}, t.ghostEvidence(r)...)
				t.add(Finding{Process: pr, Rule: RuleDeletedExe, Severity: High, Reason: "mapping", Subject: r.Path, Evidence: ev})
			} else if t.opts.Files != nil && !checked[v.FileID] {
				// With a root: code the image does not contain (or
				// another file than the one mapped).
				checked[v.FileID] = true
				if _, _, err := t.opts.Files.OpenMapped(v); err != nil {
					ev := vmaEvidence(p, v)
					ev.Value = err.Error()
					t.add(Finding{Process: pr, Rule: RuleDeletedExe, Severity: Medium, Reason: "not-in-root", Subject: v.Path, Evidence: []Evidence{ev}})
				}
			}
			if v.Flags&criuimg.MapShared == 0 { // MAP_PRIVATE
				t.modifiedCode(p, v, pr, inject)
			}
		}
		if v.Prot&criuimg.ProtWrite != 0 {
			s, name := sev()
			ev := []Evidence{vmaEvidence(p, v)}
			for _, c := range captured(p, v) {
				ev = append(ev, capturedEvidence(p, v, c[0], c[1]))
				break
			}
			t.add(Finding{Process: pr, Rule: RuleWXMemory, Severity: s, Reason: kind(p, v), Subject: mappingName(p, v), Runtime: name, Evidence: ev})
			continue
		}
		if !fileBacked && !memfd {
			s, name := sev()
			ev := []Evidence{vmaEvidence(p, v)}
			for _, c := range captured(p, v) {
				ev = append(ev, capturedEvidence(p, v, c[0], c[1]))
				break
			}
			t.add(Finding{Process: pr, Rule: RuleAnonExec, Severity: s, Reason: kind(p, v), Subject: mappingName(p, v), Runtime: name, Evidence: ev})
		}
	}
}

// execMapping says whether memoryRules examines mapping v of p (it is
// executable and not a kernel mapping), and whether it is a memfd's or a
// file's.
func execMapping(p *criuimg.Process, v *criuimg.VMA) (examined, memfd, fileBacked bool) {
	k := p.VMAKind(v)
	if v.Prot&criuimg.ProtExec == 0 || k.Special() {
		return false, false, false
	}
	return true, k == criuimg.KindShared && v.Status&criuimg.VMAAreaMemfd != 0, k == criuimg.KindFile
}

// kind is the reason a finding gives for mapping v of p: "memfd",
// "shared-anon", "file" or "anon" (criuimg's kinds, grouped).
func kind(p *criuimg.Process, v *criuimg.VMA) string {
	switch p.VMAKind(v) {
	case criuimg.KindShared, criuimg.KindSysV:
		if v.Status&criuimg.VMAAreaMemfd != 0 {
			return "memfd"
		}
		return "shared-anon"
	case criuimg.KindFile:
		return "file"
	}
	return "anon"
}

// MaxDiffs bounds the differing ranges listed per captured page run.
const MaxDiffs = 8

// modifiedCode reports the captured pages of a private file-backed
// executable mapping: CRIU writes such a page only once it was written
// (it is anonymous memory then). With Options.Files the bytes are
// compared with the file's.
func (t *run) modifiedCode(p *criuimg.Process, v *criuimg.VMA, pr Process, inject uint64) {
	runs := captured(p, v)
	if len(runs) == 0 {
		return
	}
	// CRIU's own write: the page where compel ran its remote system
	// calls is a run of its own.
	if r := runs[0]; r[0] == inject && r[1]-r[0] > p.PageSize {
		runs = append([][2]uint64{{r[0], r[0] + p.PageSize}, {r[0] + p.PageSize, r[1]}}, runs[1:]...)
	}
	var file io.ReaderAt
	var fileSize int64
	var fileErr error
	if t.opts.Files != nil {
		// (the Root keeps its files open until it is closed)
		file, fileSize, fileErr = t.opts.Files.OpenMapped(v)
	}
	for _, r := range runs {
		ev := []Evidence{vmaEvidence(p, v)}
		if file == nil {
			ev = append(ev, capturedEvidence(p, v, r[0], r[1]))
			reason := "captured"
			if r[0] == inject && r[1]-r[0] == p.PageSize {
				t.add(Finding{Process: pr, Rule: RuleModifiedCode, Severity: Info, Reason: "criu-injection", Subject: v.Path, Evidence: ev})
				continue
			}
			if fileErr != nil {
				reason = "captured-file-refused"
				ev[0].Value = fileErr.Error()
			}
			t.add(Finding{Process: pr, Rule: RuleModifiedCode, Severity: High, Reason: reason, Subject: v.Path, Evidence: ev})
			continue
		}
		diffs, err := diffRun(p, v, r[0], r[1], file, fileSize)
		if err != nil {
			t.warn("pid %d: %s: %v", p.Pid, v.Path, err)
			continue
		}
		if len(diffs) == 0 {
			e := capturedEvidence(p, v, r[0], r[1])
			e.Value = "identical to the file"
			t.add(Finding{Process: pr, Rule: RuleModifiedCode, Severity: Info, Reason: "captured-identical", Subject: v.Path, Evidence: append(ev, e)})
			continue
		}
		for _, d := range diffs {
			e := capturedEvidence(p, v, r[0], r[1])
			e.Entry = fmt.Sprintf("page at %#x, file offset %#x", d.addr&^(p.PageSize-1), v.Pgoff+(d.addr&^(p.PageSize-1))-v.Start)
			e.Start, e.End = hexAddr(d.addr), hexAddr(d.addr+uint64(len(d.got)))
			e.Hex, e.ASCII = hexASCII(d.got)
			e.Original, _ = hexASCII(d.want)
			e.Value = fmt.Sprintf("file offset %#x", v.Pgoff+d.addr-v.Start)
			ev = append(ev, e)
		}
		t.add(Finding{Process: pr, Rule: RuleModifiedCode, Severity: High, Reason: "differs", Subject: v.Path, Evidence: ev})
	}
}

// injectionPage returns the page where CRIU's compel ran the system calls
// that brought its parasite in: the start of the first executable mapping
// of at least a page below the kernel's addresses (get_exec_start in
// criu/parasite-syscall.c). compel writes its syscall instruction there
// with ptrace and puts the original bytes back, so the page is captured
// (anonymous after the copy-on-write) but equal to the file. 0 if none.
func injectionPage(p *criuimg.Process) uint64 {
	for i := range p.VMAs {
		v := &p.VMAs[i]
		if v.Prot&criuimg.ProtExec != 0 && v.Start < 1<<56 && v.End-v.Start >= p.PageSize && !v.Special() {
			return v.Start
		}
	}
	return 0
}

type diff struct {
	addr      uint64
	got, want []byte
}

// diffRun compares captured [s, e) of v with the file, page by page, and
// returns the differing ranges (at most MaxDiffs; ranges closer than 16
// bytes merged).
func diffRun(p *criuimg.Process, v *criuimg.VMA, s, e uint64, file io.ReaderAt, size int64) ([]diff, error) {
	ps := p.PageSize
	got := make([]byte, ps)
	want := make([]byte, ps)
	var out []diff
	for a := s; a < e && len(out) < MaxDiffs; a += ps {
		if _, err := p.Mem.ReadAt(got, int64(a)); err != nil {
			return nil, err
		}
		off := int64(v.Pgoff + a - v.Start)
		clear(want)
		if off < size {
			if _, err := file.ReadAt(want, off); err != nil && err != io.EOF {
				return nil, fmt.Errorf("file offset %#x: %w", off, err)
			}
		}
		if bytes.Equal(got, want) {
			continue
		}
		for i := 0; i < len(got) && len(out) < MaxDiffs; i++ {
			if got[i] == want[i] {
				continue
			}
			j, same := i, 0
			for j < len(got) && same < 16 {
				if got[j] == want[j] {
					same++
				} else {
					same = 0
				}
				j++
			}
			j -= same
			out = append(out, diff{addr: a + uint64(i), got: bytes.Clone(got[i:j]), want: bytes.Clone(want[i:j])})
			i = j
		}
	}
	return out, nil
}
