package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// inspectCLI runs 'ckpt2core inspect ARGS' in-process and returns the
// exit status, stdout and stderr.
func inspectCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"inspect"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// tarReader opens the tar stream of the archive at path, decompressed as
// its first bytes say (gzip, zstd or none), with the standard library and
// the zstd decoder only (not package archive).
func tarReader(t *testing.T, path string) *tar.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	br := bufio.NewReader(f)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		return tar.NewReader(zr)
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return tar.NewReader(zr)
	}
	return tar.NewReader(br)
}

// statsDumpTime returns the modification time of stats-dump in the tar
// headers of the archive at path.
func statsDumpTime(t *testing.T, path string) time.Time {
	t.Helper()
	tr := tarReader(t, path)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s: no stats-dump member", path)
		}
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Clean(h.Name) == "stats-dump" {
			if h.ModTime.IsZero() || h.ModTime.Unix() <= 0 {
				t.Fatalf("%s: stats-dump has no modification time (%v)", path, h.ModTime)
			}
			return h.ModTime
		}
	}
}

// reportContainer returns the container of an inspect --json report.
func reportContainer(t *testing.T, stdout string) (checkpointed, from string) {
	t.Helper()
	var rep struct {
		Container *struct {
			Checkpointed     string `json:"checkpointed"`
			CheckpointedFrom string `json:"checkpointed_from"`
		} `json:"container"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %.200s", err, stdout)
	}
	if rep.Container == nil {
		t.Fatalf("no container in %.300s", stdout)
	}
	return rep.Container.Checkpointed, rep.Container.CheckpointedFrom
}

// TestInspectCheckpointTime: Podman records no checkpoint time, so inspect
// dates a Podman checkpoint by stats-dump's modification time: the tar
// header's in an archive (zstd, gzip, plain tar), the file's in a
// directory. The expected times are read from the archives here, with
// archive/tar and the decompressors.
func TestInspectCheckpointTime(t *testing.T) {
	plain := imgtest.Gunzip(t, filepath.Join(podmanDir, "checkpoint-counters_default-counter-gzip.tar.gz"), t.TempDir())
	check := func(t *testing.T, want time.Time, args ...string) {
		t.Helper()
		code, stdout, stderr := inspectCLI(append([]string{"--json"}, args...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		got, from := reportContainer(t, stdout)
		if w := want.UTC().Format(time.RFC3339); got != w || from != "mtime of stats-dump" {
			t.Errorf("checkpointed %q from %q, want %q from \"mtime of stats-dump\"", got, from, w)
		}
		code, stdout, stderr = inspectCLI(args...)
		if line := "Checkpointed:  " + want.UTC().Format(time.RFC3339) + " (mtime of stats-dump)"; code != exitOK || !strings.Contains(stdout, line) {
			t.Errorf("exit %d; text report lacks %q:\n%s%s", code, line, stdout, stderr)
		}
	}
	for _, name := range []string{"checkpoint-counters_default-counter-zstd.tar.gz", "checkpoint-counters_default-counter-gzip.tar.gz", plain} {
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(podmanDir, name)
		}
		want := statsDumpTime(t, path)
		t.Run(filepath.Base(path), func(t *testing.T) {
			check(t, want, path)
			// Extracted by inspect --extract, then inspected as a
			// directory: the extracted files keep the members' times.
			dir := filepath.Join(t.TempDir(), "x")
			code, stdout, stderr := inspectCLI("--json", path, "--extract", dir)
			if code != exitOK {
				t.Fatalf("--extract: exit %d: %s", code, stderr)
			}
			if got, _ := reportContainer(t, stdout); got != want.UTC().Format(time.RFC3339) {
				t.Errorf("--extract: checkpointed %q, want %v", got, want)
			}
			st, err := os.Stat(filepath.Join(dir, "stats-dump"))
			if err != nil {
				t.Fatal(err)
			}
			if !st.ModTime().Equal(want) {
				t.Errorf("--extract: stats-dump mtime %v, the member's %v", st.ModTime(), want)
			}
			check(t, want, dir)
			check(t, want, filepath.Join(dir, "checkpoint"))
		})
	}
	// A directory extracted by tar -x: the file's time. Set to another
	// time, that is the one reported.
	t.Run("directory", func(t *testing.T) {
		dir := imgtest.Untar(t, tarReader(t, plain))
		check(t, statsDumpTime(t, plain), dir)
		other := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(dir, "stats-dump"), other, other); err != nil {
			t.Fatal(err)
		}
		check(t, other, dir)
		check(t, other, filepath.Join(dir, "checkpoint"))
	})
}

// TestInspectRootChecked: inspect --root refuses what convert --root
// refuses, with the same message and the usage status 2; a directory is
// accepted.
func TestInspectRootChecked(t *testing.T) {
	fx := imgtest.Testdata("x86_64/threads-c/images")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"/nonexistent", file} {
		for _, json := range []bool{false, true} {
			args := []string{fx, "--root", root}
			if json {
				args = append(args, "--json")
			}
			code, stdout, stderr := inspectCLI(args...)
			ccode, _, cstderr := convertCLI(t, fx, "-o", filepath.Join(t.TempDir(), "out"), "--root", root)
			if code != exitUsage || ccode != exitUsage {
				t.Errorf("--root %s: inspect exit %d, convert %d; want %d", root, code, ccode, exitUsage)
			}
			if stdout != "" {
				t.Errorf("--root %s: a report was printed:\n%.200s", root, stdout)
			}
			if stderr != cstderr || !strings.HasPrefix(stderr, "ckpt2core: --root: open "+root+": ") {
				t.Errorf("--root %s: inspect says %q, convert %q", root, stderr, cstderr)
			}
		}
	}
	if code, _, stderr := inspectCLI(fx, "--root", t.TempDir()); code != exitOK {
		t.Errorf("--root on an empty directory: exit %d: %s", code, stderr)
	}
}

// TestInspectHelpArchives: --help says that archives are accepted.
func TestInspectHelpArchives(t *testing.T) {
	code, stdout, _ := inspectCLI("--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	text := strings.Join(strings.Fields(stdout), " ")
	for _, want := range []string{"CHECKPOINT is a CRIU image directory, a container checkpoint archive", "tar, tar+gzip or tar+zstd", "or a directory holding an extracted one"} {
		if !strings.Contains(text, want) {
			t.Errorf("help lacks %q:\n%s", want, stdout)
		}
	}
}

// TestInspectDamaged is the user's case through the command: threads-c
// with pages-1.img cut from 147456 to 100000 bytes. The process keeps its
// comm, state, threads and registers (core-*.img), mappings (mm), files;
// the lost pages are named; the status is 0 (a report was made).
func TestInspectDamaged(t *testing.T) {
	dir := t.TempDir()
	if err := imgtest.CopyImages(dir, imgtest.Testdata("x86_64/threads-c/images")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "pages-1.img"), 100000); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := inspectCLI(dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"Architecture:  x86_64",
		"Process 32484 (threads-c): alive, 4 threads",
		"Exe:      /opt/fixture/bin/threads-c",
		"32487  vec-1      0x5608f8fa62bd  syscall",
		"Memory: 29 mappings, 26.4 MiB mapped",
		"unreadable (damaged images)",
		"warning: pagemap-32484.img: the data of entries 10-14 ends at byte 147456 of pages-1.img, which has 100000",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}

// TestInspectCorruptionSuite runs inspect on every case of the
// corruption suite (corrupt_test.go). Only a checkpoint whose
// inventory.img or pstree.img is broken cannot be reported (status 1, the
// file named on stderr); otherwise (a broken files.img included, which
// convert refuses) the status is 0, every
// process of the tree is reported, a warning names the file and what is
// wrong as convert does, and every process the damage does not concern is
// reported exactly as from the sound images.
func TestInspectCorruptionSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	base := t.TempDir()
	sound := map[string]map[uint32]json.RawMessage{}
	for name, fx := range corruptFixtures {
		if err := imgtest.CopyImages(filepath.Join(base, name), fx.dir); err != nil {
			t.Fatalf("fixture %s: %v", name, err)
		}
		code, stdout, stderr := inspectCLI("--json", "--env", filepath.Join(base, name))
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		sound[name] = processesByPid(t, stdout)
	}
	for _, c := range corruptCases(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "images")
			if err := linkDir(dir, filepath.Join(base, c.fx)); err != nil {
				t.Fatal(err)
			}
			c.mutate(t, dir)
			code, stdout, stderr := inspectCLI("--json", "--env", dir)
			for _, bad := range []string{"panic", "goroutine "} {
				if strings.Contains(stderr, bad) {
					t.Fatalf("stderr has %q:\n%s", bad, stderr)
				}
			}
			fatal := c.status == exitFailed && len(c.want) > 0 && slices.Contains([]string{"inventory.img", "pstree.img"}, c.want[0])
			if fatal {
				if code != exitFailed {
					t.Errorf("exit %d, want %d", code, exitFailed)
				}
				for _, w := range c.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("stderr lacks %q: %s", w, stderr)
					}
				}
				return
			}
			if code != exitOK {
				t.Fatalf("exit %d, want 0: %s", code, stderr)
			}
			var rep struct {
				Warnings  []string `json:"warnings"`
				Processes []struct {
					Pid      uint32   `json:"pid"`
					Warnings []string `json:"warnings"`
				} `json:"processes"`
			}
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Processes) != len(sound[c.fx]) {
				t.Errorf("%d processes, the tree has %d", len(rep.Processes), len(sound[c.fx]))
			}
			warnings := slices.Clone(rep.Warnings)
			for _, p := range rep.Processes {
				warnings = append(warnings, p.Warnings...)
			}
			all := strings.Join(warnings, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("no warning has %q:\n%s", w, all)
				}
			}
			damaged := ""
			if len(c.want) > 0 {
				damaged = c.want[0]
			}
			for pid, got := range processesByPid(t, stdout) {
				want, ok := sound[c.fx][pid]
				switch {
				case !ok:
				case c.status == exitPartial && !slices.Contains(c.fail, pid):
					if !bytes.Equal(got, want) {
						t.Errorf("pid %d, not damaged, reported differently:\n%s\nwant\n%s", pid, got, want)
					}
				default:
					// The damaged process keeps what other images say.
					var keep []string
					switch {
					case strings.HasPrefix(damaged, "mm-"), strings.HasPrefix(damaged, "pagemap-"), strings.HasPrefix(damaged, "pages-"):
						keep = []string{"comm", "state", "thread_count", "cwd", "root", "files"}
					case strings.HasPrefix(damaged, "core-"):
						keep = []string{"cwd", "root", "files"}
					}
					for _, k := range keep {
						if g, w := field(t, got, k), field(t, want, k); !bytes.Equal(g, w) {
							t.Errorf("pid %d: %s %s, want %s (from intact images)", pid, k, g, w)
						}
					}
				}
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("warnings:\n%s", all)
			}
		})
	}
}

// field returns the JSON of key k of the object o.
func field(t *testing.T, o json.RawMessage, k string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(o, &m); err != nil {
		t.Fatal(err)
	}
	return m[k]
}

// processesByPid returns the processes of an inspect --json report.
func processesByPid(t *testing.T, stdout string) map[uint32]json.RawMessage {
	t.Helper()
	var rep struct {
		Processes []json.RawMessage `json:"processes"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	out := map[uint32]json.RawMessage{}
	for _, p := range rep.Processes {
		var id struct {
			Pid uint32 `json:"pid"`
		}
		if err := json.Unmarshal(p, &id); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[id.Pid]; dup {
			t.Fatalf("pid %d reported twice", id.Pid)
		}
		out[id.Pid] = p
	}
	return out
}
