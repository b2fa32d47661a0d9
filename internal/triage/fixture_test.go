package triage_test

import (
	"archive/tar"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/rootfs"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

var intrusion = filepath.Join("..", "..", "testdata", "x86_64", "intrusion")

// triageArchive runs every rule on a checkpoint (archive or directory),
// as the command does: inspect with environments and metadata, the spec.
// root, if set, is a directory of the container's files.
func triageArchive(t *testing.T, path, root string) []triage.Finding {
	t.Helper()
	a, err := archive.Open(path, archive.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ck, err := criuimg.SalvageOpen(a.Images)
	if err != nil {
		t.Fatal(err)
	}
	meta := a.Meta()
	rep, err := inspect.Inspect(ck, inspect.Options{Env: true, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	opts := triage.Options{}
	if b, err := fs.ReadFile(meta, inspect.SpecDumpFile); err == nil {
		if opts.Spec, err = inspect.ParseSpecSecurity(b); err != nil {
			t.Fatal(err)
		}
	}
	if root != "" {
		r, err := rootfs.Open(root, ck)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		opts.Files = r
	}
	f, warnings := triage.Run(ck, rep, opts)
	for _, w := range warnings {
		t.Logf("warning: %s", w)
	}
	return f
}

type manifest struct {
	Indicators     []json.RawMessage `json:"indicators"`
	DeliveredFiles map[string]struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"delivered_files"`
}

type indicator struct {
	ID          string                              `json:"id"`
	Pid         uint32                              `json:"pid"`
	Comm        string                              `json:"comm"`
	Exe         string                              `json:"exe"`
	Argv        []string                            `json:"argv"`
	File        string                              `json:"file"`
	Mapping     struct{ Start, End, Prot string }   `json:"mapping"`
	Markers     json.RawMessage                     `json:"markers"`
	First       string                              `json:"first_bytes"`
	Patched     string                              `json:"patched_at"`
	Orig        string                              `json:"original_bytes"`
	Captured    string                              `json:"captured_bytes"`
	Ghost       string                              `json:"ghost_image"`
	GhostSHA    string                              `json:"ghost_sha256"`
	GhostSz     int64                               `json:"ghost_size"`
	ArgvArea    struct{ Start, End string }         `json:"argv_area"`
	Memfd       string                              `json:"memfd_name"`
	ContentsSHA string                              `json:"contents_sha256"`
	Env         []string                            `json:"env"`
	Hook        []struct{ Start, End, Prot string } `json:"hook_mapped"`
	FD          int                                 `json:"fd"`
	Path        string                              `json:"path"`
	Size        int64                               `json:"size"`
	SHA256      string                              `json:"sha256"`
	Client      struct {
		Pid           uint32
		Local, Remote string
	} `json:"client"`
	Server struct {
		Pid           uint32
		Local, Remote string
	} `json:"server"`
	Ancestry []struct{ Pid uint32 } `json:"ancestry"`
	Lines    []struct {
		Line    string   `json:"line"`
		FoundAt []string `json:"found_at"`
	} `json:"lines"`
}

func loadIndicators(t *testing.T) (map[string]indicator, manifest) {
	var m manifest
	imgtest.ReadJSON(t, filepath.Join(intrusion, "manifest.json"), &m)
	out := map[string]indicator{}
	for _, raw := range m.Indicators {
		var in indicator
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatal(err)
		}
		out[in.ID] = in
	}
	return out, m
}

type marker struct {
	Marker string `json:"marker"`
	Vaddr  string `json:"vaddr"`
}

func markers(t *testing.T, in indicator) []marker {
	var ms []marker
	if err := json.Unmarshal(in.Markers, &ms); err != nil {
		t.Fatalf("%s markers: %v", in.ID, err)
	}
	return ms
}

// find returns the findings of rule for pid with severity sev that match.
func find(fs []triage.Finding, pid uint32, rule string, sev triage.Severity, match func(triage.Finding) bool) []triage.Finding {
	var out []triage.Finding
	for _, f := range fs {
		if f.Pid == pid && f.Rule == rule && f.Severity == sev && (match == nil || match(f)) {
			out = append(out, f)
		}
	}
	return out
}

func hasEvidence(f triage.Finding, match func(triage.Evidence) bool) bool {
	return slices.ContainsFunc(f.Evidence, match)
}

// bytesAt returns the n bytes at addr of an evidence excerpt.
func bytesAt(e triage.Evidence, addr string, n int) []byte {
	var a, s uint64
	fmt.Sscanf(addr, "0x%x", &a)
	fmt.Sscanf(e.Start, "0x%x", &s)
	b, err := hex.DecodeString(e.Hex)
	if err != nil || a < s || a-s+uint64(n) > uint64(len(b)) {
		return nil
	}
	return b[a-s : a-s+uint64(n)]
}

// Every planted indicator I01-I12 of after.tar.zst is found in its process
// with the manifest's evidence.
func TestIntrusionIndicators(t *testing.T) {
	ind, m := loadIndicators(t)
	got := triageArchive(t, filepath.Join(intrusion, "after.tar.zst"), "")
	checkProcess := func(id string, f triage.Finding) {
		in := ind[id]
		if f.Comm != in.Comm || f.Exe != in.Exe && !strings.Contains(f.Exe, strings.TrimPrefix(in.Exe, "memfd:")) {
			t.Errorf("%s: process %d %q %q, manifest %q %q", id, f.Pid, f.Comm, f.Exe, in.Comm, in.Exe)
		}
		if len(in.Argv) > 0 && (len(f.Argv) == 0 || f.Argv[0] != in.Argv[0]) {
			t.Errorf("%s: argv %q, manifest %q", id, f.Argv, in.Argv)
		}
	}
	one := func(id, rule string, sev triage.Severity, match func(triage.Finding) bool) {
		t.Helper()
		in := ind[id]
		fs := find(got, in.Pid, rule, sev, match)
		if len(fs) == 0 {
			t.Errorf("%s: no %s %s finding for pid %d with the manifest's evidence", id, sev, rule, in.Pid)
			return
		}
		checkProcess(id, fs[0])
	}
	pageWithMarker := func(id string) func(triage.Finding) bool {
		in := ind[id]
		return func(f triage.Finding) bool {
			return hasEvidence(f, func(e triage.Evidence) bool {
				if e.Start != in.Mapping.Start || e.End != in.Mapping.End || e.Hex == "" {
					return false
				}
				if !strings.HasPrefix(e.Hex, in.First) {
					return false
				}
				for _, mk := range markers(t, in) {
					if string(bytesAt(e, mk.Vaddr, len(mk.Marker))) != mk.Marker {
						return false
					}
				}
				return true
			})
		}
	}
	// I01, I02: anonymous executable and RWX pages with their bytes.
	one("I01", triage.RuleAnonExec, triage.High, pageWithMarker("I01"))
	one("I02", triage.RuleWXMemory, triage.High, pageWithMarker("I02"))
	// I03: the libc page, captured.
	one("I03", triage.RuleModifiedCode, triage.High, func(f triage.Finding) bool {
		in := ind["I03"]
		return f.Subject == in.File && hasEvidence(f, func(e triage.Evidence) bool {
			return e.Start == in.Mapping.Start && e.End == in.Mapping.End && e.Mapping == in.File && e.Prot == "r-x"
		})
	})
	// I04: the deleted executable and its ghost file.
	one("I04", triage.RuleDeletedExe, triage.High, func(f triage.Finding) bool {
		in := ind["I04"]
		return f.Reason == "exe" && hasEvidence(f, func(e triage.Evidence) bool {
			return e.Image == in.Ghost && e.SHA256 == in.GhostSHA && e.Size != nil && *e.Size == in.GhostSz
		})
	})
	// I05: the kernel-thread name, with the argv area.
	one("I05", triage.RuleNameSpoof, triage.High, func(f triage.Finding) bool {
		in := ind["I05"]
		return hasEvidence(f, func(e triage.Evidence) bool { return e.Start == in.ArgvArea.Start && e.End == in.ArgvArea.End }) &&
			hasEvidence(f, func(e triage.Evidence) bool { return e.Image == "core-42.img" && e.Value == in.Comm })
	})
	// I06: the memfd executable.
	one("I06", triage.RuleMemfdExe, triage.High, func(f triage.Finding) bool {
		in := ind["I06"]
		return f.Reason == "exe" && strings.Contains(f.Subject, in.Memfd) && hasEvidence(f, func(e triage.Evidence) bool {
			return e.SHA256 == in.ContentsSHA && e.Size != nil && *e.Size == in.Size
		})
	})
	// I07: LD_PRELOAD and the deleted hook mapped, its ghost's sha256.
	for _, id := range []string{"I07", "I08"} {
		one(id, triage.RulePreload, triage.High, func(f triage.Finding) bool {
			return hasEvidence(f, func(e triage.Evidence) bool { return slices.Contains(ind[id].Env, e.Value) })
		})
	}
	one("I07", triage.RuleDeletedExe, triage.High, func(f triage.Finding) bool {
		in := ind["I07"]
		return f.Reason == "mapping" && hasEvidence(f, func(e triage.Evidence) bool {
			return slices.ContainsFunc(in.Hook, func(h struct{ Start, End, Prot string }) bool {
				return h.Start == e.Start && h.End == e.End && h.Prot == "PROT_READ | PROT_EXEC"
			})
		}) && hasEvidence(f, func(e triage.Evidence) bool { return e.SHA256 == m.DeliveredFiles["hook-so"].SHA256 })
	})
	if n := len(find(got, 94, triage.RuleDeletedExe, triage.High, nil)); n != 0 {
		t.Errorf("I08: the static sleep maps no hook, but %d deleted-exe findings", n)
	}
	// I09: the deleted open file, size and sha256.
	one("I09", triage.RuleDeletedOpen, triage.Medium, func(f triage.Finding) bool {
		in := ind["I09"]
		return f.Subject == in.Path && hasEvidence(f, func(e triage.Evidence) bool {
			return strings.HasPrefix(e.Entry, fmt.Sprintf("fd %d ", in.FD))
		}) && hasEvidence(f, func(e triage.Evidence) bool {
			return e.SHA256 == in.SHA256 && e.Size != nil && *e.Size == in.Size
		})
	})
	// I10: both ends of the C2 connection, by processes that are not the
	// service.
	in := ind["I10"]
	for _, end := range []struct {
		pid           uint32
		local, remote string
	}{{in.Client.Pid, in.Client.Local, in.Client.Remote}, {in.Server.Pid, in.Server.Local, in.Server.Remote}} {
		fs := find(got, end.pid, triage.RuleNetwork, triage.Medium, func(f triage.Finding) bool {
			return f.Reason == "not-service" && hasEvidence(f, func(e triage.Evidence) bool {
				return strings.Contains(e.Value, end.local+" -> "+end.remote) && strings.Contains(e.Value, "ESTABLISHED")
			})
		})
		if len(fs) == 0 {
			t.Errorf("I10: no medium network finding for pid %d %s -> %s", end.pid, end.local, end.remote)
		}
	}
	// I11: the interactive shell under httpd, with its ancestors.
	one("I11", triage.RuleProcessTree, triage.High, func(f triage.Finding) bool {
		for _, a := range ind["I11"].Ancestry[:3] { // bash, the CGI, the httpd connection
			if !hasEvidence(f, func(e triage.Evidence) bool { return strings.HasPrefix(e.Entry, fmt.Sprintf("pid %d ", a.Pid)) }) {
				return false
			}
		}
		return true
	})
	// I12: the seven history lines, in order, where the manifest found
	// them.
	one("I12", triage.RuleShellHistory, triage.Info, func(f triage.Finding) bool {
		lines := ind["I12"].Lines
		if len(f.Evidence) != len(lines) {
			return false
		}
		for i, l := range lines {
			if f.Evidence[i].Value != l.Line || !slices.Contains(l.FoundAt, f.Evidence[i].Start) {
				return false
			}
		}
		return true
	})
}

// libcRoot extracts the image's libc.so.6 from image-docker.tar into a
// directory laid out as the container's root.
func libcRoot(t *testing.T) string {
	const name = "lib/x86_64-linux-gnu/libc.so.6"
	f, err := os.Open(filepath.Join(intrusion, "image-docker.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	outer := tar.NewReader(f)
	dir := t.TempDir()
	for {
		h, err := outer.Next()
		if err != nil {
			t.Fatalf("image-docker.tar: no layer with %s: %v", name, err)
		}
		if !strings.HasSuffix(h.Name, ".tar") {
			continue
		}
		inner := tar.NewReader(outer)
		for {
			ih, err := inner.Next()
			if err != nil {
				break
			}
			if strings.TrimPrefix(ih.Name, "./") != name || ih.Typeflag != tar.TypeReg {
				continue
			}
			dst := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(dst), 0o755)
			out, err := os.Create(dst)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, inner); err != nil {
				t.Fatal(err)
			}
			out.Close()
			return dir
		}
	}
}

// I03 with the image's libc as root: the 12 bytes of readdir64 that
// differ, at the manifest's address, with the file's and the captured
// bytes.
func TestIntrusionModifiedCodeWithRoot(t *testing.T) {
	ind, _ := loadIndicators(t)
	in := ind["I03"]
	got := triageArchive(t, filepath.Join(intrusion, "after.tar.zst"), libcRoot(t))
	fs := find(got, in.Pid, triage.RuleModifiedCode, triage.High, func(f triage.Finding) bool {
		return f.Reason == "differs" && f.Subject == in.File
	})
	if len(fs) != 1 {
		t.Fatalf("%d high modified-code findings of differing %s bytes, want 1", len(fs), in.File)
	}
	var diffs []triage.Evidence
	for _, e := range fs[0].Evidence {
		if e.Original != "" {
			diffs = append(diffs, e)
		}
	}
	if len(diffs) != 1 || diffs[0].Start != in.Patched || diffs[0].Hex != in.Captured || diffs[0].Original != in.Orig {
		t.Errorf("differences %+v, want one at %s: %s (file %s)", diffs, in.Patched, in.Captured, in.Orig)
	}
	// Only libc is in this root: every other executable mapping is one
	// the root does not hold, libc's are not reported.
	for _, f := range got {
		if f.Rule == triage.RuleDeletedExe && f.Reason == "not-in-root" && f.Subject == in.File {
			t.Errorf("pid %d: the root's libc reported missing: %v", f.Pid, f.Evidence)
		}
	}
	if len(find(got, 1, triage.RuleDeletedExe, triage.Medium, func(f triage.Finding) bool { return f.Reason == "not-in-root" && f.Subject == "/bin/busybox" })) == 0 {
		t.Error("busybox, not in the root, is not reported")
	}
	// The implant's first code page (compel's) is not
	// in the root: it stays info; no other libc page differs.
	for _, f := range got {
		if f.Rule == triage.RuleModifiedCode && f.Severity == triage.High && f.Reason != "differs" {
			t.Errorf("other high modified-code finding: %+v", f)
		}
	}
}

// The clean side: before.tar and every other fixture have no finding
// above info.
func TestCleanFixtures(t *testing.T) {
	paths := []string{filepath.Join(intrusion, "before.tar")}
	for _, pat := range []string{"x86_64/*/images", "arm64/*/images", "x86_64/podman-counter/*.tar.gz", "x86_64/servers/*/images"} {
		m, _ := filepath.Glob(filepath.Join("..", "..", "testdata", pat))
		paths = append(paths, m...)
	}
	if len(paths) < 15 {
		t.Fatalf("only %d fixtures found: %v", len(paths), paths)
	}
	for _, p := range paths {
		t.Run(strings.TrimPrefix(p, "../../testdata/"), func(t *testing.T) {
			got := triageArchive(t, p, "")
			for _, f := range got {
				if f.Severity > triage.Info {
					t.Errorf("pid %d %s: %s %s %s %s", f.Pid, f.Comm, f.Severity, f.Rule, f.Reason, f.Subject)
				}
			}
		})
	}
}

// The JIT code caches of the JVM and node are recognised: reported as
// info with the runtime named, never high.
func TestServersJIT(t *testing.T) {
	for _, tt := range []struct{ dir, runtime string }{{"jvm", "JVM"}, {"node", "V8 (node)"}} {
		got := triageArchive(t, filepath.Join("..", "..", "testdata", "x86_64", "servers", tt.dir, "images"), "")
		n := 0
		for _, f := range got {
			if f.Rule == triage.RuleWXMemory || f.Rule == triage.RuleAnonExec {
				if f.Severity != triage.Info || f.Runtime != tt.runtime {
					t.Errorf("%s: %s %s runtime %q", tt.dir, f.Severity, f.Rule, f.Runtime)
				}
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s: no JIT mapping reported", tt.dir)
		}
	}
}

// imageRoot extracts the image's one layer (image-docker.tar) into a
// directory: the container's root as the image has it.
func imageRoot(t *testing.T) string {
	f, err := os.Open(filepath.Join(intrusion, "image-docker.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	outer := tar.NewReader(f)
	for {
		h, err := outer.Next()
		if err != nil {
			t.Fatalf("image-docker.tar: no layer: %v", err)
		}
		if strings.HasSuffix(h.Name, ".tar") && h.Typeflag == tar.TypeReg {
			return imgtest.Untar(t, tar.NewReader(outer))
		}
	}
}

// With the whole image as root: compel's pages equal the files (info),
// every mapped file is found, and the only code that differs is I03's.
func TestIntrusionImageRoot(t *testing.T) {
	ind, _ := loadIndicators(t)
	root := imageRoot(t)
	for _, name := range []string{"before.tar", "after.tar.zst"} {
		got := triageArchive(t, filepath.Join(intrusion, name), root)
		identical := 0
		for _, f := range got {
			switch {
			case f.Rule == triage.RuleModifiedCode && f.Reason == "captured-identical":
				identical++
			case f.Rule == triage.RuleModifiedCode && f.Severity > triage.Info:
				if name == "before.tar" || f.Pid != ind["I03"].Pid || f.Subject != ind["I03"].File || f.Reason != "differs" {
					t.Errorf("%s: pid %d %s %s %s", name, f.Pid, f.Severity, f.Reason, f.Subject)
				}
			case f.Reason == "not-in-root":
				t.Errorf("%s: pid %d: %s not found in the image: %v", name, f.Pid, f.Subject, f.Evidence[0].Value)
			case name == "before.tar" && f.Severity > triage.Info:
				t.Errorf("%s: pid %d %s %s %s", name, f.Pid, f.Severity, f.Rule, f.Reason)
			}
		}
		if identical == 0 {
			t.Errorf("%s: no captured code page compared equal to the image's file", name)
		}
	}
}
