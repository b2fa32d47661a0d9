package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt2core/ckpt2core/internal/synth"
)

// writeTarZstdOrder writes the CRIU images of dir as checkpoint/* of a
// zstd tar at path: names sorted, as Podman's writer walks the directory,
// or with the pages-*.img files first if pagesFirst (before the images
// that describe them).
func writeTarZstdOrder(t *testing.T, dir, path string, pagesFirst bool) {
	t.Helper()
	order := podmanOrder
	if pagesFirst {
		order = pagesBefore
	}
	writeImagesArchive(t, dir, path, "zstd", imageNames(t, dir, order))
}

// spoolFD returns the size of the largest file that pid has open under
// dir, and its /proc link, as /proc/PID/fd shows them (heldIn).
func spoolFD(pid int, dir string) (int64, string) {
	var best int64
	var link string
	for l, size := range heldIn(pid, dir) {
		if size > best {
			best, link = size, l
		}
	}
	return best, link
}

// TestSIGKILLMidSpool runs the real binary, every command that reads a
// checkpoint, on a zstd archive with 128 MiB of pages before the images
// that describe them (so each spools them: one read in order would stream
// through memory), and kills it (SIGKILL: no handler runs) while it holds
// more than 8 MiB of a spooled member in TMPDIR, as /proc/PID/fd shows:
// nothing at all may be left in TMPDIR afterwards, not a file, not an
// empty directory (spooled members have no name, and nothing named is
// made for a run that only spools).
func TestSIGKILLMidSpool(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a 128 MiB archive")
	}
	bin := buildBinary(t)
	tmp := t.TempDir()
	arch := largeArchive(t, tmp, true)
	for _, args := range [][]string{
		{"grep", "no-such-secret", arch},
		{"inspect", arch},
		{"triage", arch},
		{"convert", arch, "-o", "OUT/cores"},
		{"report", arch, "-o", "OUT/report.html"},
		{"extract", arch, "-o", "OUT/extracted"},
		{"diff", arch, arch},
		{"list", tmp},
		{"gdb", arch, "--gdb", "true"},
	} {
		t.Run(args[0], func(t *testing.T) {
			out := t.TempDir() // a convert's OUT_DIR stays after SIGKILL: not in TMPDIR
			for i, a := range args {
				args[i] = strings.Replace(a, "OUT", out, 1)
			}
			work := privateTmp(t)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "TMPDIR="+work)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var link string
			deadline := time.Now().Add(60 * time.Second)
			for {
				var size int64
				if size, link = spoolFD(cmd.Process.Pid, work); size >= 8<<20 {
					break
				}
				select {
				case err := <-waited:
					t.Fatalf("ckpt2core ended (%v) before it was seen spooling 8 MiB into TMPDIR: the test proves nothing", err)
				default:
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("never saw a spooled member in TMPDIR")
				}
				time.Sleep(time.Millisecond) // polling /proc, not a synchronisation
			}
			cmd.Process.Signal(syscall.SIGKILL)
			<-waited
			t.Logf("killed while spooling into %s", link)
			if left := leftIn(t, work); len(left) != 0 {
				t.Errorf("left in TMPDIR after SIGKILL: %v", left)
			}
		})
	}
}

// largeArchive writes dir/big.tar.zst, a zstd archive of a synthetic
// checkpoint with 128 MiB of pages (names sorted: pstree.img after the
// pages; with pagesFirst every pages-*.img before all other images), and
// returns its path.
func largeArchive(t *testing.T, dir string, pagesFirst bool) string {
	t.Helper()
	img := filepath.Join(dir, "images")
	if err := synth.Large(128 << 20).Write(img); err != nil {
		t.Fatal(err)
	}
	arch := filepath.Join(dir, "big.tar.zst")
	writeTarZstdOrder(t, img, arch, pagesFirst)
	os.RemoveAll(img)
	return arch
}
