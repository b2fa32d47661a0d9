package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// convertCLI runs the converter in-process and returns the exit status,
// stdout and stderr.
func convertCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// coresIn returns the core files of dir by name.
func coresIn(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

// TestPodmanArchives converts both real Podman exports, and checks that
// each archive's cores equal the cores of the same checkpoint extracted to
// a directory with --extract.
func TestPodmanArchives(t *testing.T) {
	for _, name := range []string{"checkpoint-counters_default-counter-gzip.tar.gz", "checkpoint-counters_default-counter-zstd.tar.gz"} {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			arch := filepath.Join(podmanDir, name)
			outA, outD, ext := filepath.Join(tmp, "a"), filepath.Join(tmp, "d"), filepath.Join(tmp, "extracted")
			code, stdout, stderr := convertCLI(t, arch, "-o", outA, "--extract", ext)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, pid := range []string{"1", "6", "7"} {
				if !regexp.MustCompile(`(?m)^` + pid + `\t`).MatchString(stdout) {
					t.Errorf("no core line for pid %s in %q", pid, stdout)
				}
			}
			code, _, stderr = convertCLI(t, ext, "-o", outD)
			if code != exitOK {
				t.Fatalf("extracted directory: exit %d: %s", code, stderr)
			}
			a, d := coresIn(t, outA), coresIn(t, outD)
			if len(a) != 3 || len(d) != 3 {
				t.Fatalf("cores: archive %d, directory %d; want 3 each", len(a), len(d))
			}
			for n, b := range a {
				if !bytes.Equal(b, d[n]) {
					t.Errorf("%s from the archive differs from %s from the extracted directory", n, n)
				}
			}
		})
	}
}

// kubeArchive writes the counter fixture in the Kubernetes/CRI-O layout
// (checkpoint/ plus container files) as a tar, compressed by comp.
func kubeArchive(t *testing.T, path, comp string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.WriteCloser = nopCloser{f}
	switch comp {
	case "gzip":
		w = gzip.NewWriter(f)
	case "zstd":
		if w, err = zstd.NewWriter(f); err != nil {
			t.Fatal(err)
		}
	}
	tw := tar.NewWriter(w)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	tw.WriteHeader(&tar.Header{Name: "checkpoint/", Mode: 0o700, Typeflag: tar.TypeDir})
	dir := imgtest.Testdata("x86_64/counter/images")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		add("checkpoint/"+e.Name(), b)
	}
	add("config.dump", []byte(`{"id":"0123","name":"counter","rootfsImageName":"example/counter:1"}`))
	add("spec.dump", []byte(`{"hostname":"counters"}`))
	add("dump.log", []byte("(00.000000) Dumping finished successfully\n"))
	add("bind.mounts", []byte("[]"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// TestKubeArchives converts the counter fixture packed as Kubernetes
// checkpoint archives (plain, gzip, zstd): the cores equal those converted
// from the image directory.
func TestKubeArchives(t *testing.T) {
	tmp := t.TempDir()
	ref := filepath.Join(tmp, "ref")
	if code, _, stderr := convertCLI(t, imgtest.Testdata("x86_64/counter/images"), "-o", ref); code != exitOK {
		t.Fatalf("directory: exit %d: %s", code, stderr)
	}
	want := coresIn(t, ref)
	for _, comp := range []string{"plain", "gzip", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			arch := filepath.Join(tmp, "checkpoint-counter_default-counter-2026-11-27T10:00:00Z."+comp+".tar")
			kubeArchive(t, arch, comp)
			out := filepath.Join(tmp, "out-"+comp)
			if code, _, stderr := convertCLI(t, arch, "-o", out); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := coresIn(t, out)
			if len(got) != len(want) {
				t.Fatalf("%d cores, want %d", len(got), len(want))
			}
			for n, b := range want {
				if !bytes.Equal(b, got[n]) {
					t.Errorf("%s differs from the directory's", n)
				}
			}
		})
	}
}

// TestHostileArchive checks at the command line that a hostile archive
// fails cleanly: a clear error, exit 1, and nothing written outside OUT
// (nor inside it).
func TestHostileArchive(t *testing.T) {
	tmp := t.TempDir()
	arch := filepath.Join(tmp, "evil.tar")
	f, _ := os.Create(arch)
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "checkpoint/inventory.img", Mode: 0o600, Size: 4, Typeflag: tar.TypeReg})
	tw.Write([]byte{0x16, 0x31, 0x31, 0x58})
	tw.WriteHeader(&tar.Header{Name: "../escaped", Mode: 0o600, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("bad"))
	tw.Close()
	f.Close()
	out := filepath.Join(tmp, "out")
	code, _, stderr := convertCLI(t, arch, "-o", out)
	if code != exitFailed || !strings.Contains(stderr, "../escaped") {
		t.Fatalf("exit %d, stderr %q: want exit %d and an error naming ../escaped", code, stderr, exitFailed)
	}
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		if e.Name() != "evil.tar" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestRootGdb converts counter's python3 with --root / and checks that gdb's
// backtrace names the same functions as on the kernel's core (only where
// the host's files are the checkpoint's: same build-ids).
func TestRootGdb(t *testing.T) {
	if _, err := exec.LookPath("gdb"); err != nil {
		t.Skip("gdb not installed")
	}
	out := t.TempDir()
	code, _, stderr := convertCLI(t, imgtest.Testdata("x86_64/counter/images"), "-o", out, "--root", "/", "--pid", "3760")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "build-id") {
		t.Skipf("this host's files are not the checkpoint's: %s", stderr)
	}
	oracle := imgtest.Gunzip(t, imgtest.Testdata("x86_64", "counter", "core.3760.gz"), t.TempDir())
	ours := gdbFuncs(t, filepath.Join(out, "core.3760"))
	want := gdbFuncs(t, oracle)
	if len(want) == 0 || strings.Join(ours, ",") != strings.Join(want, ",") {
		t.Errorf("gdb backtrace functions:\n ours   %v\n oracle %v", ours, want)
	}
}

var frameRE = regexp.MustCompile(`(?m)^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(`)

func gdbFuncs(t *testing.T, core string) []string {
	t.Helper()
	b, err := exec.Command("gdb", "-batch", "-nx", "-ex", "bt", "/usr/bin/python3.11", core).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, b)
	}
	var fns []string
	for _, m := range frameRE.FindAllStringSubmatch(string(b), -1) {
		fns = append(fns, m[1])
	}
	return fns
}

// TestPodmanGrep finds the Podman manifest's secret at every address the
// manifest lists, in both archive forms.
func TestPodmanGrep(t *testing.T) {
	var man struct {
		Secrets []struct {
			String string `json:"string"`
			Hits   []struct {
				Pid   int    `json:"pid"`
				Vaddr string `json:"vaddr"`
			} `json:"private_page_hits"`
		} `json:"secrets"`
	}
	b, err := os.ReadFile(filepath.Join(podmanDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"checkpoint-counters_default-counter-gzip.tar.gz", "checkpoint-counters_default-counter-zstd.tar.gz"} {
		sec := man.Secrets[0]
		code, stdout, stderr := convertCLI(t, "grep", sec.String, filepath.Join(podmanDir, name))
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		for _, h := range sec.Hits {
			line := regexp.MustCompile(`(?m)^` + strconv.Itoa(h.Pid) + ` \S+ ` + h.Vaddr + ` `)
			if !line.MatchString(stdout) {
				t.Errorf("%s: no hit for pid %d at %s in:\n%s", name, h.Pid, h.Vaddr, stdout)
			}
		}
		if n := strings.Count(stdout, "\n"); n != len(sec.Hits) {
			t.Errorf("%s: %d hits, the manifest lists %d", name, n, len(sec.Hits))
		}
	}
}
