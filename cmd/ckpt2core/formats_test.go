package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ckpt2core/ckpt2core/internal/synth"
)

// TestFormatsAgree: one synthetic checkpoint (32 MiB of pages) as a plain
// tar, a gzip tar and a zstd tar, names sorted as Podman writes them
// (pstree.img after the pages: grep streams with the provisional tree):
// the cores are byte-identical, and grep finds the last captured page's
// own address (synth writes it in the page's first bytes) with the same
// output in each.
func TestFormatsAgree(t *testing.T) {
	s := synth.Large(32 << 20)
	tmp := t.TempDir()
	img := filepath.Join(tmp, "images")
	if err := s.Write(img); err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	ents, _ := os.ReadDir(img) // sorted
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(img, e.Name()))
		tw.WriteHeader(&tar.Header{Name: "checkpoint/" + e.Name(), Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.Close()
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(raw.Bytes())
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	io.Copy(zw, bytes.NewReader(raw.Bytes()))
	zw.Close()
	probe := binary.LittleEndian.AppendUint64(nil, s.Probe)
	var cores map[string][]byte
	var grepOut string
	for _, f := range []struct {
		name string
		data []byte
	}{{"plain.tar", raw.Bytes()}, {"c.tar.gz", gz.Bytes()}, {"c.tar.zst", zs.Bytes()}} {
		p := filepath.Join(tmp, f.name)
		os.WriteFile(p, f.data, 0o600)
		out := filepath.Join(tmp, "out-"+f.name)
		if code, _, stderr := convertCLI(t, "convert", p, "-o", out); code != exitOK {
			t.Fatalf("%s: convert exit %d: %s", f.name, code, stderr)
		}
		got := coresIn(t, out)
		if len(got) != 1 {
			t.Fatalf("%s: %d cores", f.name, len(got))
		}
		if cores == nil {
			cores = got
		}
		for n, b := range got {
			if !bytes.Equal(b, cores[n]) {
				t.Errorf("%s: %s differs from the plain tar's", f.name, n)
			}
		}
		var o, e bytes.Buffer
		if code := run([]string{"grep", "--hex", hex.EncodeToString(probe), p}, &o, &e); code != grepFound {
			t.Fatalf("%s: grep exit %d: %s", f.name, code, e.String())
		}
		if !strings.Contains(o.String(), fmt.Sprintf(" %#x ", s.Probe)) {
			t.Errorf("%s: grep did not find the probe at %#x: %q", f.name, s.Probe, o.String())
		}
		if grepOut == "" {
			grepOut = o.String()
		} else if o.String() != grepOut {
			t.Errorf("%s: grep printed\n%s\nthe plain tar's:\n%s", f.name, o.String(), grepOut)
		}
	}
}
