package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

var counterImages = imgtest.Testdata("x86_64/counter/images")

// splitIncremental makes an incremental chain from the real counter
// fixture's images, as CRIU's pre-dump and dump with --prev-images-dir
// (--track-mem) lay it out: levels[0] is the oldest checkpoint, the last
// one the newest. Pagemap entry i of each process belongs to level i %
// len(levels): there it is PE_PRESENT with its pages; the levels after it
// mark it PE_PARENT (criu/pagemap.c: in the parent) and hold no data for
// it; the levels before it hold a stale copy (zeros), so that reading it
// from the wrong level shows. Each level but the first links its parent
// with "parent" -> ../PREVIOUS. It returns the directories.
func splitIncremental(t *testing.T, base string, levels ...string) []string {
	t.Helper()
	var dirs []string
	for i, l := range levels {
		d := filepath.Join(base, l)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := imgtest.CopyImages(d, counterImages); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			if err := os.Symlink("../"+levels[i-1], filepath.Join(d, criuimg.ParentLink)); err != nil {
				t.Fatal(err)
			}
		}
		dirs = append(dirs, d)
	}
	names, _ := filepath.Glob(filepath.Join(counterImages, "pagemap-*.img"))
	for _, pm := range names {
		name := filepath.Base(pm)
		if strings.HasPrefix(name, "pagemap-shmem-") {
			continue
		}
		hdr, ents, err := imgtest.ReadEntries(pm)
		if err != nil {
			t.Fatal(err)
		}
		head := &pagemap.PagemapHead{}
		if err := proto.Unmarshal(ents[0], head); err != nil {
			t.Fatal(err)
		}
		pagesName := fmt.Sprintf("pages-%d.img", head.GetPagesId())
		pages, err := os.ReadFile(filepath.Join(counterImages, pagesName))
		if err != nil {
			t.Fatal(err)
		}
		outEnts := make([][][]byte, len(levels))
		outPages := make([][]byte, len(levels))
		for l := range levels {
			outEnts[l] = [][]byte{ents[0]}
		}
		var off uint64
		for i, raw := range ents[1:] {
			e := &pagemap.PagemapEntry{}
			if err := proto.Unmarshal(raw, e); err != nil {
				t.Fatal(err)
			}
			if e.GetFlags()&criuimg.PEPresent == 0 {
				for l := range levels {
					outEnts[l] = append(outEnts[l], raw)
				}
				continue
			}
			n := e.GetNrPages() * 4096
			data := pages[off : off+n]
			off += n
			own := i % len(levels)
			for l := range levels {
				c := proto.Clone(e).(*pagemap.PagemapEntry)
				switch {
				case l == own:
					outPages[l] = append(outPages[l], data...)
				case l > own:
					c.Flags = proto.Uint32(criuimg.PEParent)
				default:
					outPages[l] = append(outPages[l], make([]byte, n)...)
				}
				outEnts[l] = append(outEnts[l], imgtest.Marshal(c))
			}
		}
		for l, d := range dirs {
			if err := imgtest.WriteEntries(filepath.Join(d, name), hdr, outEnts[l]); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, pagesName), outPages[l], 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dirs
}

// TestIncremental converts incremental checkpoints built from the real
// counter fixture: a child whose pages are split with its parent and
// grandparent (plain CRIU's images/parent links), and Podman's layout
// (checkpoint/parent -> ../pre-checkpoint). The cores equal the
// non-incremental fixture's byte for byte. A parent link that leaves the
// checkpoint, a cycle, and a parent lacking a page are errors naming the
// file (and the address), never zeros.
func TestIncremental(t *testing.T) {
	ref := t.TempDir()
	if code, _, stderr := convertCLI(t, counterImages, "-o", ref); code != exitOK {
		t.Fatalf("fixture: exit %d: %s", code, stderr)
	}
	want := coresIn(t, ref)
	same := func(t *testing.T, images string) {
		t.Helper()
		out := t.TempDir()
		code, _, stderr := convertCLI(t, images, "-o", out)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if strings.Contains(stderr, "parent checkpoint") {
			t.Errorf("stderr: %s", stderr)
		}
		got := coresIn(t, out)
		if len(got) != len(want) {
			t.Fatalf("%d cores, want %d", len(got), len(want))
		}
		for n, b := range want {
			if !bytes.Equal(b, got[n]) {
				t.Errorf("%s differs from the non-incremental fixture's", n)
			}
		}
	}
	t.Run("criu", func(t *testing.T) {
		dirs := splitIncremental(t, t.TempDir(), "1", "2", "images")
		same(t, dirs[2])
	})
	t.Run("podman", func(t *testing.T) {
		base := t.TempDir()
		dirs := splitIncremental(t, base, "pre-checkpoint", "checkpoint")
		os.WriteFile(filepath.Join(base, "config.dump"), []byte(`{"id":"x","name":"counter"}`), 0o600)
		same(t, base)
		if len(dirs) != 2 {
			t.Fatal(dirs)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			break_ func(dirs []string)
			want   string
		}{
			{"leaves", func(d []string) {
				os.Remove(filepath.Join(d[1], "parent"))
				os.Symlink("/etc", filepath.Join(d[1], "parent"))
			}, "parent -> /etc: the parent link leaves the checkpoint"},
			{"leaves-up", func(d []string) {
				os.Remove(filepath.Join(d[1], "parent"))
				os.Symlink("../../x", filepath.Join(d[1], "parent"))
			}, "the parent link leaves the checkpoint"},
			{"cycle", func(d []string) {
				os.Remove(filepath.Join(d[1], "parent"))
				os.Symlink("../images", filepath.Join(d[1], "parent"))
			}, "the parent links form a cycle"},
			{"lacking", func(d []string) {
				// The grandparent loses the entries it alone holds.
				p := filepath.Join(d[0], "pagemap-3757.img")
				hdr, ents, _ := imgtest.ReadEntries(p)
				imgtest.WriteEntries(p, hdr, ents[:1])
			}, "are marked in the parent checkpoint (PE_PARENT), but"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dirs := splitIncremental(t, t.TempDir(), "1", "2", "images")
				tc.break_(dirs)
				code, _, stderr := convertCLI(t, dirs[2], "-o", t.TempDir())
				if code == exitOK || !strings.Contains(stderr, tc.want) {
					t.Errorf("exit %d, stderr %q; want %q", code, stderr, tc.want)
				}
			})
		}
	})
}
