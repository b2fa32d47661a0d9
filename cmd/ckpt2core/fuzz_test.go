package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// fuzzConvertFixtures are the checkpoints FuzzConvert starts from.
var fuzzConvertFixtures = []string{
	imgtest.Testdata("x86_64/static-c/images"),
	imgtest.Testdata("x86_64/threads-c/images"),
	imgtest.Testdata("x86_64/threads-c-criu411/images"),
	imgtest.Testdata("arm64/threads-c/images"),
}

// fuzzImages lists the images of dir a fuzzed input may replace: every
// image but the pages files, whose bytes are copied, never parsed.
func fuzzImages(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, ".img") && !strings.HasPrefix(n, "pages-") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// FuzzConvert runs the whole conversion, in-process, over image
// directories of real checkpoints in which one image is replaced by fuzzed
// bytes. It checks the exit status against what was written, that nothing
// panicked and that no temporary file is left in OUT.
func FuzzConvert(f *testing.F) {
	base := f.TempDir()
	var dirs []string
	var names [][]string
	for i, fx := range fuzzConvertFixtures {
		d := filepath.Join(base, fmt.Sprint(i))
		if err := imgtest.CopyImages(d, fx); err != nil {
			f.Skipf("fixture: %v", err)
		}
		ns, err := fuzzImages(d)
		if err != nil {
			f.Fatal(err)
		}
		for wi, n := range ns {
			b, err := os.ReadFile(filepath.Join(d, n))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), uint8(wi), b)
		}
		dirs, names = append(dirs, d), append(names, ns)
	}
	f.Fuzz(func(t *testing.T, fix, which uint8, data []byte) {
		i := int(fix) % len(dirs)
		name := names[i][int(which)%len(names[i])]
		tmp := t.TempDir()
		dir := filepath.Join(tmp, "images")
		if err := linkDir(dir, dirs[i]); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(tmp, "out")
		var stdout, stderr bytes.Buffer
		status := run([]string{dir, "-o", out, "-q", "-j", "1"}, &stdout, &stderr)
		errText := stderr.String()
		for _, bad := range []string{"panic", "internal error", "goroutine "} {
			if strings.Contains(errText, bad) {
				t.Fatalf("%s replaced: stderr has %q:\n%s", name, bad, errText)
			}
		}
		cores := 0
		for _, n := range listDir(t, out) {
			if !strings.HasPrefix(n, "core.") {
				t.Fatalf("%s replaced: OUT holds %s", name, n)
			}
			cores++
			ef, err := elf.Open(filepath.Join(out, n))
			if err != nil {
				t.Fatalf("%s replaced: %s: %v", name, n, err)
			}
			if ef.Type != elf.ET_CORE {
				t.Fatalf("%s replaced: %s is not a core", name, n)
			}
			ef.Close()
		}
		if lines := strings.Count(stdout.String(), "\n"); lines != cores {
			t.Fatalf("%s replaced: %d cores, %d lines on stdout", name, cores, lines)
		}
		switch status {
		case exitOK:
			if errText != "" {
				t.Fatalf("%s replaced: status 0 with errors:\n%s", name, errText)
			}
		case exitFailed:
			if cores != 0 || errText == "" {
				t.Fatalf("%s replaced: status 1 with %d cores, stderr:\n%s", name, cores, errText)
			}
		case exitPartial:
			if cores == 0 || errText == "" {
				t.Fatalf("%s replaced: status 3 with %d cores, stderr:\n%s", name, cores, errText)
			}
		default:
			t.Fatalf("%s replaced: status %d, stderr:\n%s", name, status, errText)
		}
	})
}
