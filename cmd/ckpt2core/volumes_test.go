package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// volumeTar is a volume as Podman's exportCheckpoint writes it
// (chrootarchive.Tar of the mount point with IncludeSourceDir: "./" first).
func volumeTar(t *testing.T, add func(tw *tar.Writer)) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	add(tw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tarFile(tw *tar.Writer, name, data string) {
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o640, Size: int64(len(data))})
	tw.Write([]byte(data))
}

// podmanWithVolumes copies the real Podman export of the counter fixture
// (every member, in order) and appends two volumes as exportCheckpoint
// does (libpod/container_internal_common.go: volumes/NAME.tar, included
// after the checkpoint's files): "data", and "evil", a volume an attacker
// filled with names that climb out, absolute names, links and more
// entries than are listed. It writes it plain and zstd-compressed and
// returns the paths and the volumes' bytes.
func podmanWithVolumes(t *testing.T) (plain, zst string, vols map[string][]byte) {
	f, err := os.Open(filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	vols = map[string][]byte{
		"data": volumeTar(t, func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "./db/", Typeflag: tar.TypeDir, Mode: 0o755})
			tarFile(tw, "./db/users.csv", "alice,1\nbob,2\n")
		}),
		"evil": volumeTar(t, func(tw *tar.Writer) {
			tarFile(tw, "../../../etc/cron.d/x", "* * * * * root /tmp/x\n")
			tarFile(tw, "/abs/dropper.sh", "#!/bin/sh\n")
			tw.WriteHeader(&tar.Header{Name: "./shadow", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"})
			tw.WriteHeader(&tar.Header{Name: "./hard", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"})
			for i := range 1200 {
				tarFile(tw, fmt.Sprintf("./spam/%04d", i), "")
			}
		}),
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.Copy(tw, tr)
	}
	tw.WriteHeader(&tar.Header{Name: "volumes/", Typeflag: tar.TypeDir, Mode: 0o700})
	for _, n := range []string{"data", "evil"} {
		tw.WriteHeader(&tar.Header{Name: "volumes/" + n + ".tar", Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(vols[n]))})
		tw.Write(vols[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plain, zst = filepath.Join(dir, "vol.tar"), filepath.Join(dir, "vol.tar.zst")
	os.WriteFile(plain, buf.Bytes(), 0o600)
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z)
	zw.Write(buf.Bytes())
	zw.Close()
	os.WriteFile(zst, z.Bytes(), 0o600)
	return plain, zst, vols
}

// TestVolumes: inspect lists Podman's volumes (name, size, entries, the
// first 1000 entries, paths kept inside the volume, a warning naming each
// entry that would leave it), plain and streamed; extract carves their
// regular files (kind volume) inside DIR only, with their bytes.
func TestVolumes(t *testing.T) {
	plain, zst, vols := podmanWithVolumes(t)
	for _, a := range []string{plain, zst} {
		t.Run(filepath.Base(a), func(t *testing.T) {
			code, out, stderr := convertCLI(t, "inspect", "--json", a)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var rep struct {
				Volumes []struct {
					Name      string `json:"name"`
					Size      int64  `json:"size"`
					Entries   int    `json:"entries"`
					Truncated bool   `json:"truncated"`
					Files     []struct {
						Path, Type string
						Size       int64
					} `json:"files"`
				} `json:"volumes"`
				Processes []json.RawMessage `json:"processes"`
				Warnings  []string          `json:"warnings"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Processes) != 3 || len(rep.Volumes) != 2 {
				t.Fatalf("%d processes, %d volumes; want 3 and 2", len(rep.Processes), len(rep.Volumes))
			}
			d, e := rep.Volumes[0], rep.Volumes[1]
			if d.Name != "data" || d.Size != int64(len(vols["data"])) || d.Entries != 2 || d.Truncated || len(d.Files) != 2 ||
				d.Files[1].Path != "db/users.csv" || d.Files[1].Size != 14 || d.Files[1].Type != "file" {
				t.Errorf("data: %+v", d)
			}
			if e.Name != "evil" || e.Size != int64(len(vols["evil"])) || e.Entries != 1204 || !e.Truncated || len(e.Files) != 1000 {
				t.Errorf("evil: name %q size %d entries %d truncated %v files %d", e.Name, e.Size, e.Entries, e.Truncated, len(e.Files))
			} else if e.Files[0].Path != "etc/cron.d/x" || e.Files[1].Path != "abs/dropper.sh" || e.Files[2].Type != "symlink" || e.Files[3].Type != "other" {
				t.Errorf("evil: first files %+v", e.Files[:4])
			}
			warned := strings.Join(rep.Warnings, "\n")
			for _, w := range []string{`volumes/evil.tar: entry 0 "../../../etc/cron.d/x"`, `volumes/evil.tar: entry 1 "/abs/dropper.sh"`} {
				if !strings.Contains(warned, w) {
					t.Errorf("warnings %q lack %q", rep.Warnings, w)
				}
			}
			code, out, _ = convertCLI(t, "inspect", a)
			if code != exitOK || !strings.Contains(out, "Volume data (volumes/data.tar, ") || !strings.Contains(out, "1204 entries, the first 1000 listed") {
				t.Errorf("inspect text: exit %d, no volume section in\n%s", code, out)
			}
			dir := filepath.Join(t.TempDir(), "loot")
			code, _, stderr = convertCLI(t, "extract", a, "-o", dir, "volume")
			if code != exitOK {
				t.Fatalf("extract: exit %d: %s", code, stderr)
			}
			var man []manifestEntry
			b, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
			if err := json.Unmarshal(b, &man); err != nil {
				t.Fatal(err)
			}
			if len(man) != 1203 { // users.csv, x, dropper.sh, 1200 spam files: no link
				t.Errorf("%d files extracted, want 1203", len(man))
			}
			byOrig := map[string]manifestEntry{}
			for _, m := range man {
				byOrig[m.Label+":"+m.Original] = m
				if m.Kind != "volume" || m.Image != "volumes/"+m.Label+".tar" {
					t.Errorf("entry %+v", m)
				}
			}
			for key, want := range map[string]string{"data:/db/users.csv": "alice,1\nbob,2\n", "evil:/etc/cron.d/x": "* * * * * root /tmp/x\n", "evil:/abs/dropper.sh": "#!/bin/sh\n"} {
				m, ok := byOrig[key]
				if !ok {
					t.Errorf("%s not extracted", key)
					continue
				}
				got, err := os.ReadFile(filepath.Join(dir, m.Path))
				if err != nil || string(got) != want || filepath.Base(m.Path) != m.Path {
					t.Errorf("%s: %q in %q, %v; want %q", key, got, m.Path, err, want)
				}
			}
			ents, _ := os.ReadDir(dir)
			for _, en := range ents {
				if !en.Type().IsRegular() {
					t.Errorf("%s in DIR is not a regular file", en.Name())
				}
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), "etc")); err == nil {
				t.Error("a file was written outside DIR")
			}
		})
	}
}
