package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMetaModTime: MetaModTime gives each member's tar header time, read
// in place (tar) or spooled (gzip, zstd), and the file's mtime in a
// directory; extracted files keep their members' times; a missing file
// wraps fs.ErrNotExist.
func TestMetaModTime(t *testing.T) {
	times := map[string]time.Time{
		"checkpoint/inventory.img": time.Date(2026, 11, 27, 7, 6, 20, 0, time.UTC),
		"checkpoint/stats-dump":    time.Date(2026, 11, 27, 7, 6, 21, 0, time.UTC), // CRIU's copy, in the images
		"config.dump":              time.Date(2026, 11, 27, 7, 6, 22, 0, time.UTC),
		"stats-dump":               time.Date(2026, 11, 27, 7, 6, 23, 500_000_000, time.UTC), // PAX: sub-second
		"rootfs-diff.tar":          time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC),
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"checkpoint/inventory.img", "checkpoint/stats-dump", "config.dump", "stats-dump", "rootfs-diff.tar"} {
		data := []byte(name)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(data)), ModTime: times[name], Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, ck *Checkpoint) {
		t.Helper()
		for name, want := range map[string]time.Time{"config.dump": times["config.dump"], "stats-dump": times["stats-dump"], "rootfs-diff.tar": times["rootfs-diff.tar"]} {
			got, err := metaModTime(ck, name)
			if err != nil || !got.Equal(want) {
				t.Errorf("%s: MetaModTime(%s) = %v, %v; want %v", ck.Kind(), name, got, err, want)
			}
		}
		if _, err := metaModTime(ck, "spec.dump"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: MetaModTime(spec.dump) = %v, want fs.ErrNotExist", ck.Kind(), err)
		}
		if _, err := metaModTime(ck, "pstree.img"); err == nil {
			t.Errorf("%s: MetaModTime(pstree.img): no error for a name that is not metadata", ck.Kind())
		}
	}
	for _, kind := range []string{KindTar, KindTarGzip, KindTarZstd} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ck")
			if err := os.WriteFile(path, compress(t, kind, buf.Bytes()), 0o600); err != nil {
				t.Fatal(err)
			}
			ck, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			if ck.Kind() != kind {
				t.Fatalf("kind %q", ck.Kind())
			}
			check(t, ck)

			// Extracted, then opened as a directory.
			dir := filepath.Join(t.TempDir(), "x")
			ex, err := Open(path, Options{ExtractDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			check(t, ex)
			ex.Close()
			for name, want := range times {
				st, err := os.Stat(filepath.Join(dir, name))
				if err != nil || !st.ModTime().Equal(want) {
					t.Errorf("extracted %s: %v, %v; want mtime %v", name, st.ModTime(), err, want)
				}
			}
			d, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			check(t, d)
		})
	}
	// A CRIU image directory: stats-dump is among the images.
	t.Run("images", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "stats-dump"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(dir, "stats-dump"), want, want); err != nil {
			t.Fatal(err)
		}
		ck, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		if got, err := metaModTime(ck, "stats-dump"); err != nil || !got.Equal(want) {
			t.Errorf("MetaModTime(stats-dump) = %v, %v; want %v", got, err, want)
		}
		if _, err := metaModTime(ck, "rootfs-diff.tar"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("MetaModTime(rootfs-diff.tar) = %v, want fs.ErrNotExist", err)
		}
	})
}

// metaModTime is the modification time of name in ck.Meta().
func metaModTime(ck *Checkpoint, name string) (time.Time, error) {
	st, err := fs.Stat(ck.Meta(), name)
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}
