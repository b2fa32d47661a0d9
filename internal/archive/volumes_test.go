package archive

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"testing"
)

// podmanVolumeEntries is the real counter fixture's images laid out as
// Podman's exportCheckpoint writes a container with two named volumes
// (libpod/container_internal_common.go: each volume as an uncompressed
// volumes/NAME.tar of chrootarchive.Tar with IncludeSourceDir), plus
// members that look like volumes and are not.
func podmanVolumeEntries(t *testing.T) ([]entry, map[string][]byte) {
	vol := func(files ...string) []byte {
		var es []entry
		es = append(es, entry{name: "./", typ: tar.TypeDir})
		for _, f := range files {
			es = append(es, entry{name: "./" + f, data: []byte("content of " + f)})
		}
		b, _ := buildTar(t, es)
		return b
	}
	vols := map[string][]byte{"data.tar": vol("a.txt", "b.txt"), "logs.tar": vol("app.log")}
	es := crioEntries(counterFiles(t))
	es = append(es,
		entry{name: "volumes/", typ: tar.TypeDir},
		entry{name: "volumes/data.tar", data: vols["data.tar"]},
		entry{name: "volumes/logs.tar", data: vols["logs.tar"]},
		entry{name: "volumes/sub/deeper.tar", data: []byte("not a volume")},
		entry{name: "volumes/notes.txt", data: []byte("not a volume")},
	)
	return es, vols
}

// TestVolumes: Meta lists volumes/NAME.tar (fs.ReadDir "volumes") with
// their sizes and gives their bytes, in every way an archive is read
// (streamed included), and in the directory it was extracted to.
func TestVolumes(t *testing.T) {
	es, vols := podmanVolumeEntries(t)
	data, _ := buildTar(t, es)
	check := func(t *testing.T, ck *Checkpoint) {
		t.Helper()
		ents, err := fs.ReadDir(ck.Meta(), "volumes")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
			info, _ := e.Info()
			if info.Size() != int64(len(vols[e.Name()])) {
				t.Errorf("%s: size %d, want %d", e.Name(), info.Size(), len(vols[e.Name()]))
			}
			b, err := fs.ReadFile(ck.Meta(), "volumes/"+e.Name())
			if err != nil || !bytes.Equal(b, vols[e.Name()]) {
				t.Errorf("%s: %d bytes, %v; want the member's %d", e.Name(), len(b), err, len(vols[e.Name()]))
			}
		}
		if len(got) != 2 || got[0] != "data.tar" || got[1] != "logs.tar" {
			t.Errorf("volumes %q, want data.tar, logs.tar", got)
		}
		for _, n := range []string{"volumes/sub/deeper.tar", "volumes/notes.txt", "volumes/missing.tar"} {
			if _, err := ck.Meta().Open(n); err == nil {
				t.Errorf("%s opened", n)
			}
		}
	}
	for _, mode := range openModes {
		t.Run(mode.name, func(t *testing.T) {
			ck, root, err := openIn(t, mode, data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			check(t, ck)
			if mode.extract {
				d, err := Open(root+"/ex", Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				check(t, d)
			}
		})
	}
	for _, kind := range []string{KindTarGzip, KindTarZstd} {
		t.Run("stream-"+kind, func(t *testing.T) {
			p, _ := writeArchive(t, kind, data)
			ck, err := Open(p, Options{Stream: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			check(t, ck)
		})
	}
	t.Run("link-refused", func(t *testing.T) {
		bad := append(append([]entry(nil), es[:len(es)-4]...), entry{name: "volumes/evil.tar", typ: tar.TypeSymlink, linkname: "../config.dump"})
		b, _ := buildTar(t, bad)
		refused(t, b, Options{}, `"volumes/evil.tar"`, "links are refused")
	})
	t.Run("none", func(t *testing.T) {
		b, _ := buildTar(t, crioEntries(counterFiles(t)))
		ck, _, err := openIn(t, openModes[0], b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		if ents, err := fs.ReadDir(ck.Meta(), "volumes"); err != nil || len(ents) != 0 {
			t.Errorf("ReadDir = %v, %v; want none", ents, err)
		}
	})
}
