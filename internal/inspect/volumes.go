package inspect

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// VolumesDir is the directory of a Podman checkpoint's named volumes:
// exportCheckpoint (libpod/container_internal_common.go) writes each
// volume the container mounts as an uncompressed volumes/NAME.tar, unless
// --ignore-volumes.
const VolumesDir = "volumes"

// MaxVolumeFiles bounds the entries listed of one volume (all are
// counted, up to MaxDiffEntries).
const MaxVolumeFiles = 1000

// Volume is one named volume of the checkpoint.
type Volume struct {
	Name      string     `json:"name"`      // NAME of volumes/NAME.tar
	Size      int64      `json:"size"`      // the tar's bytes
	Entries   int        `json:"entries"`   // its entries (the archive's root "./" not counted)
	Files     []DiffFile `json:"files"`     // the first MaxVolumeFiles entries
	Truncated bool       `json:"truncated"` // more entries than Files lists
}

// WalkVolume calls fn for each entry of the volume tar read from r (name
// is for messages), in archive order, at most MaxDiffEntries; it returns
// whether more were left out. Paths are cleaned as if rooted at the
// volume ("./a", "/a" and "../a" are all "a"); an entry whose raw name is
// absolute or has a ".." component is passed with Suspect set. A volume
// is plain data: ".wh." names are files, not whiteouts. An error from fn
// stops the walk and is returned.
func WalkVolume(name string, r io.Reader, fn func(VolumeEntry) error) (bool, error) {
	tr := tar.NewReader(r)
	for n := 0; ; {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return false, fmt.Errorf("%s: entry %d: %w", name, n, err)
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if p == "" && h.Typeflag == tar.TypeDir {
			continue // the volume's root (IncludeSourceDir)
		}
		if n >= MaxDiffEntries {
			return true, nil
		}
		e := VolumeEntry{DiffEntry: DiffEntry{DiffFile: DiffFile{Path: p, Size: h.Size}, Mode: h.Mode, Link: h.Linkname}, Index: n, Raw: h.Name}
		e.Suspect = strings.HasPrefix(h.Name, "/") || slicesContains(strings.Split(h.Name, "/"), "..") || p == ""
		switch h.Typeflag {
		case tar.TypeReg:
			e.Type, e.Content = "file", tr
		case tar.TypeDir:
			e.Type, e.Size = "dir", 0
		case tar.TypeSymlink:
			e.Type, e.Size = "symlink", 0
		default:
			e.Type, e.Size = "other", 0 // hard links, devices, FIFOs
		}
		n++
		if err := fn(e); err != nil {
			return false, err
		}
	}
}

// VolumeEntry is one entry of a volume tar as WalkVolume gives it.
type VolumeEntry struct {
	DiffEntry
	Index   int    // the entry's number in the tar (its root not counted)
	Raw     string // the name as the tar has it
	Suspect bool   // absolute, or with a ".." component: it would leave the volume
}

func slicesContains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// readVolumes lists the volumes of meta (fs.ReadDir of VolumesDir),
// each with its entries counted and the first MaxVolumeFiles listed. A
// volume that cannot be read costs only its listing, with a warning
// naming it; a suspect entry name is warned about.
func readVolumes(meta fs.FS, warn func(string, ...any)) []Volume {
	if meta == nil {
		return nil
	}
	ents, err := fs.ReadDir(meta, VolumesDir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			warn("%s: %v", VolumesDir, err)
		}
		return nil
	}
	var out []Volume
	for _, e := range ents {
		name := VolumesDir + "/" + e.Name()
		v := Volume{Name: strings.TrimSuffix(e.Name(), ".tar")}
		if info, err := e.Info(); err == nil {
			v.Size = info.Size()
		}
		f, err := meta.Open(name)
		if err != nil {
			warn("%s: %v", name, err)
			out = append(out, v)
			continue
		}
		suspects := 0
		more, err := WalkVolume(name, f, func(d VolumeEntry) error {
			v.Entries++
			if len(v.Files) < MaxVolumeFiles {
				v.Files = append(v.Files, d.DiffFile)
			} else {
				v.Truncated = true
			}
			if d.Suspect {
				if suspects < 10 {
					warn("%s: entry %d %q: absolute or with a \"..\" component: it would be written outside the volume (listed as %q)", name, d.Index, d.Raw, d.Path)
				}
				suspects++
			}
			return nil
		})
		f.Close()
		if suspects > 10 {
			warn("%s: %d entries in all would be written outside the volume", name, suspects)
		}
		if err != nil {
			warn("%v", err)
		}
		if more {
			v.Truncated = true
			warn("%s: more than %d entries: only those are counted", name, MaxDiffEntries)
		}
		out = append(out, v)
	}
	return out
}
