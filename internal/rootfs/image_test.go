package rootfs

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestMaterializeLinks: an image's symbolic links are made relative and
// never leave the directory (absolute targets, and relative ones climbing
// above the root, resolve as in a chroot); only the wanted files are
// written.
func TestMaterializeLinks(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "lib/x.so", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644},
		{Name: "lib/other", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644},
		{Name: "lib64/abs", Typeflag: tar.TypeSymlink, Linkname: "/lib/x.so"},
		{Name: "lib64/up", Typeflag: tar.TypeSymlink, Linkname: "../../../../etc/passwd"},
	} {
		tw.WriteHeader(h)
		if h.Size > 0 {
			tw.Write([]byte("abc"))
		}
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(t.TempDir(), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	im, err := OpenImage(string(lp))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	dir := t.TempDir()
	written, err := im.Materialize(dir, map[string]bool{"lib/x.so": true})
	if err != nil || strings.Join(written, ",") != "lib/x.so" {
		t.Fatalf("written %v, %v", written, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lib/other")); err == nil {
		t.Error("lib/other written, not wanted")
	}
	if got, err := os.Readlink(filepath.Join(dir, "lib64/abs")); err != nil || got != "../lib/x.so" {
		t.Errorf("lib64/abs -> %q (%v), want ../lib/x.so", got, err)
	}
	// A link climbing above the root: dropped (go-containerregistry's
	// flattening drops it) or kept inside dir, never leaving it.
	if got, err := os.Readlink(filepath.Join(dir, "lib64/up")); err == nil {
		if p := filepath.Clean(filepath.Join(dir, "lib64", got)); !strings.HasPrefix(p, dir+"/") {
			t.Errorf("lib64/up -> %q leaves the directory", got)
		}
	}
}
