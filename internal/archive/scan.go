package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// role says what a member is to this package.
type role int

const (
	roleSkip  role = iota // not needed: ignored
	roleImage             // checkpoint/<image>
	roleTop               // a metadata file or rootfs-diff.tar
	// roleParent: DIR/pagemap-*.img or DIR/pages-*.img in a top-level
	// directory other than checkpoint/: the page images of a parent
	// checkpoint (Podman's pre-checkpoint/); key is the member's name.
	roleParent
	// roleLink: DIR/parent, a symbolic link ../NAME to the sibling
	// directory holding the parent checkpoint's images (CRIU's
	// --prev-images-dir, Podman's checkpoint/parent -> ../pre-checkpoint);
	// key is DIR, the link's target NAME is in hdr.Linkname (cleaned).
	roleLink
	// roleVolume: volumes/NAME.tar, a named volume's content (Podman's
	// exportCheckpoint); key is the member's name.
	roleVolume
)

// member is one validated header of the archive.
type member struct {
	hdr  *tar.Header
	name string // cleaned name (no "./", no trailing slash)
	off  int64  // offset of the data in the (uncompressed) tar stream
	role role
	key  string // image name (roleImage) or top-level name (roleTop)
}

// countReader counts the bytes read through it and refuses to read more
// than limit bytes.
type countReader struct {
	r     io.Reader
	n     int64
	limit int64
}

var errStreamLimit = errors.New("tar stream longer than MaxBytes")

func (c *countReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, errStreamLimit
	}
	if rem := c.limit - c.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// seekCountReader also seeks, so that archive/tar skips data without
// reading it; the count follows the position.
type seekCountReader struct {
	countReader
	s io.Seeker
}

func (c *seekCountReader) Seek(off int64, whence int) (int64, error) {
	n, err := c.s.Seek(off, whence)
	if err == nil {
		c.n = n
	}
	return n, err
}

// Limits on member names. A longer name cannot be a file of a checkpoint:
// Linux refuses paths longer than PATH_MAX and file names longer than
// NAME_MAX.
const (
	maxNameLen  = 4096 // PATH_MAX
	maxImageLen = 255  // NAME_MAX, for the file name of a CRIU image
)

// memberError names the member an error is about.
func memberError(path, raw string, format string, args ...any) error {
	return fmt.Errorf("%s: member %q: %s", path, shortName(raw), fmt.Sprintf(format, args...))
}

// shortName is raw, cut if longer than maxNameLen so that an error
// stays readable.
func shortName(raw string) string {
	if len(raw) <= maxNameLen {
		return raw
	}
	return raw[:64] + "..."
}

// cleanName checks a member name and returns it without "." components,
// empty components and trailing slash.
func cleanName(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("empty name")
	}
	if strings.HasPrefix(raw, "/") {
		return "", errors.New("absolute path")
	}
	parts := strings.Split(raw, "/")
	out := parts[:0]
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", errors.New(`".." in its path`)
		}
		out = append(out, p)
	}
	return strings.Join(out, "/"), nil
}

// inNeededArea reports whether a member named name would be read by this
// package: anything under checkpoint/ and the top-level files it uses.
func inNeededArea(name string) bool {
	return name == "checkpoint" || strings.HasPrefix(name, "checkpoint/") || isMetaName(name) || name == rootfsDiff ||
		isParentImage(name) || isVolumeName(name)
}

// imagesDir is the directory of a container checkpoint holding the CRIU
// images.
const imagesDir = "checkpoint"

// topDirFile splits name into a top-level directory and a file directly
// in it.
func topDirFile(name string) (dir, file string, ok bool) {
	dir, file, ok = strings.Cut(name, "/")
	if !ok || dir == "" || file == "" || strings.Contains(file, "/") {
		return "", "", false
	}
	return dir, file, true
}

// isParentImage reports whether name is a page image (pagemap-*.img,
// pages-*.img) of a top-level directory other than checkpoint/: those a
// parent checkpoint's images give (criu/pagemap.c reads only them there).
func isParentImage(name string) bool {
	dir, file, ok := topDirFile(name)
	return ok && dir != imagesDir && strings.HasSuffix(file, ".img") && len(file) <= maxImageLen &&
		(strings.HasPrefix(file, "pagemap-") || strings.HasPrefix(file, "pages-"))
}

// volumesDir is where Podman's exportCheckpoint puts the named volumes,
// one uncompressed tar each (volumes/NAME.tar).
const volumesDir = "volumes"

func isVolumeName(name string) bool {
	dir, file, ok := topDirFile(name)
	return ok && dir == volumesDir && strings.HasSuffix(file, ".tar") && len(file) > len(".tar") && len(file) <= maxImageLen
}

// parentLink reports whether the link member hdr, named name, is the one
// link accepted: DIR/parent (DIR a top-level directory), a symbolic link
// whose target is ../NAME, NAME a sibling directory. It returns DIR and
// NAME.
func parentLink(name string, hdr *tar.Header) (dir, target string, ok bool) {
	if hdr.Typeflag != tar.TypeSymlink {
		return "", "", false
	}
	dir, file, ok := topDirFile(name)
	if !ok || file != "parent" {
		return "", "", false
	}
	t := strings.TrimSuffix(hdr.Linkname, "/")
	sib, ok := strings.CutPrefix(t, "../")
	if !ok || sib == "" || sib == "." || sib == ".." || strings.Contains(sib, "/") || len(sib) > maxImageLen {
		return "", "", false
	}
	return dir, sib, true
}

// escapes reports whether a link target leaves the archive's tree.
func escapes(target string) bool {
	if target == "" || strings.HasPrefix(target, "/") {
		return true
	}
	for _, p := range strings.Split(target, "/") {
		if p == ".." {
			return true
		}
	}
	return false
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// physSize is the number of data bytes a member occupies in the stream (at
// most, for a sparse member).
func physSize(h *tar.Header) int64 {
	switch h.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return 0
	}
	return h.Size
}

// scan walks the members of the tar stream read by tr through cr,
// validates every one of them, and calls fn for each member that is not
// skipped (fn may read its data from tr); with every, fn is also called
// for the members this package does not need (role roleSkip: regular
// files, directories and links; sparse files are not passed on). fileSize
// is the size of the file when the tar is read in place (its members' data
// must lie in it), -1 when streaming.
func scan(path string, cr *countReader, tr *tar.Reader, opts Options, fileSize int64, every bool, fn func(*member) error) (nImages int, err error) {
	seen := make(map[string]struct{})
	count, nParent := 0, 0
	sawPod := false
	var prev *member
	for {
		hdr, err := tr.Next()
		if err == tar.ErrInsecurePath && hdr != nil {
			err = nil // checked below, with our own rules
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nextError(path, cr, prev, err, opts)
		}
		raw := hdr.Name
		count++
		if count > opts.MaxMembers {
			return 0, memberError(path, raw, "more than %d members in the archive (MaxMembers; a tar bomb?)", opts.MaxMembers)
		}
		if len(raw) > maxNameLen {
			return 0, memberError(path, raw, "name of %d bytes, longer than %d (PATH_MAX): refused", len(raw), maxNameLen)
		}
		name, err := cleanName(raw)
		if err != nil {
			return 0, memberError(path, raw, "%v: refused", err)
		}
		name, inside := opts.within(name) // Options.Container (pod.go)
		if name == PodOptionsFile && opts.Container == "" && hdr.Typeflag == tar.TypeReg {
			sawPod = true
		}
		m := &member{hdr: hdr, name: name, off: cr.n}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			continue // PAX global header: not a file
		case tar.TypeDir:
		case tar.TypeReg, tar.TypeGNUSparse:
			switch {
			case !inside:
			case strings.HasPrefix(name, "checkpoint/") && !strings.ContainsAny(name[len("checkpoint/"):], `/\`):
				m.role, m.key = roleImage, name[len("checkpoint/"):]
				if len(m.key) > maxImageLen {
					return 0, memberError(path, raw, "image name of %d bytes, longer than %d (NAME_MAX): refused", len(m.key), maxImageLen)
				}
			case isMetaName(name) || name == rootfsDiff:
				m.role, m.key = roleTop, name
			case isParentImage(name):
				m.role, m.key = roleParent, name
			case isVolumeName(name):
				m.role, m.key = roleVolume, name
			}
		case tar.TypeSymlink, tar.TypeLink:
			if dir, target, ok := parentLink(name, hdr); ok {
				hdr.Linkname = target
				m.role, m.key = roleLink, dir
				break
			}
			what := "symbolic link"
			if hdr.Typeflag == tar.TypeLink {
				what = "hard link"
			}
			if inside && inNeededArea(name) {
				return 0, memberError(path, raw, "%s to %q: links are refused in checkpoint/ and for checkpoint files", what, hdr.Linkname)
			}
			if escapes(hdr.Linkname) {
				return 0, memberError(path, raw, "%s to %q points outside the archive: refused", what, hdr.Linkname)
			}
		case tar.TypeChar, tar.TypeBlock:
			return 0, memberError(path, raw, "device node (%d, %d): refused", hdr.Devmajor, hdr.Devminor)
		case tar.TypeFifo:
			return 0, memberError(path, raw, "FIFO: refused")
		default:
			if inside && inNeededArea(name) {
				return 0, memberError(path, raw, "unsupported member type %q", hdr.Typeflag)
			}
		}
		if name == "" {
			if hdr.Typeflag == tar.TypeDir {
				continue // "./": the archive's root
			}
			return 0, memberError(path, raw, "empty name: refused")
		}
		ps := physSize(hdr)
		if m.off > opts.MaxBytes-ps {
			return 0, memberError(path, raw, "%d bytes at offset %d: the archive is longer than %d bytes (MaxBytes; a tar bomb?)", hdr.Size, m.off, opts.MaxBytes)
		}
		if fileSize >= 0 && ps > 0 && !isSparse(hdr) && m.off > fileSize-ps {
			return 0, memberError(path, raw, "truncated archive: declares %d bytes, the file has %d after its header", hdr.Size, max(fileSize-m.off, 0))
		}
		prev = m
		if !inside {
			continue // another container of a pod: validated, not passed on
		}
		if m.role == roleSkip {
			if every && !isSparse(hdr) {
				if err := fn(m); err != nil {
					return 0, err
				}
			}
			continue
		}
		// Only the members used are remembered: the names of the others
		// would cost memory for nothing.
		if _, dup := seen[name]; dup {
			return 0, memberError(path, raw, "duplicate member (%q appears twice): refused", name)
		}
		seen[name] = struct{}{}
		if isSparse(hdr) {
			// archive/tar expands the holes: the data would take its full
			// declared size, whatever the archive holds.
			return 0, memberError(path, raw, "sparse file (%d bytes once expanded): refused", hdr.Size)
		}
		if m.role == roleImage {
			nImages++
		}
		if m.role == roleParent {
			nParent++
		}
		if err := fn(m); err != nil {
			return 0, err
		}
	}
	if count == 0 {
		return 0, fmt.Errorf("%s: no member: empty tar archive", path)
	}
	if nImages == 0 && opts.PreCheckpoint && nParent > 0 {
		return nImages, nil
	}
	if nImages == 0 && opts.Container != "" {
		return 0, fmt.Errorf("%s: no %s/checkpoint/ images in the pod archive: %w", path, opts.Container, errors.Join(fs.ErrNotExist, ErrNotCheckpoint))
	}
	if nImages == 0 && sawPod {
		return 0, &PodError{Path: path}
	}
	if nImages == 0 {
		return 0, fmt.Errorf("%s: no checkpoint/ images in the archive: %w", path, ErrNotCheckpoint)
	}
	return nImages, nil
}

// nextError explains an error of tar.Reader.Next.
func nextError(path string, cr *countReader, prev *member, err error, opts Options) error {
	switch {
	case errors.Is(err, errStreamLimit):
		if prev != nil {
			return memberError(path, prev.hdr.Name, "the archive goes on after it beyond %d bytes (MaxBytes; a tar bomb?)", opts.MaxBytes)
		}
		return fmt.Errorf("%s: the archive is longer than %d bytes (MaxBytes)", path, opts.MaxBytes)
	case prev == nil && (errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF)):
		// Shorter than one tar header (512 bytes) or not one.
		return fmt.Errorf("%s: not a checkpoint: neither a directory nor a tar archive (plain, gzip or zstd): %w", path, err)
	case prev == nil:
		return fmt.Errorf("%s: reading the first tar header: %w", path, err)
	case errors.Is(err, io.ErrUnexpectedEOF) && cr.n < prev.off+physSize(prev.hdr):
		return memberError(path, prev.hdr.Name, "truncated archive: declares %d bytes, the data ends after %d bytes", prev.hdr.Size, cr.n-prev.off)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: truncated archive after member %q: %w", path, prev.hdr.Name, err)
	}
	return fmt.Errorf("%s: reading the tar header after member %q: %w", path, prev.hdr.Name, err)
}
