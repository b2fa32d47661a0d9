package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Incremental checkpoints in an archive. CRIU's dump after a pre-dump
// (--prev-images-dir) links its image directory to the parent's with
// "parent" -> ../NAME, and marks the pages it did not write again
// PE_PARENT; Podman (libpod/container_internal_common.go, checkpoint with
// --with-previous) makes that link checkpoint/parent -> ../pre-checkpoint
// and exportCheckpoint puts checkpoint/ (with the link) in the archive but
// not pre-checkpoint/: that one is the export of the pre-checkpoint
// (--pre-checkpoint --export), a separate archive holding pre-checkpoint/
// instead of checkpoint/, which podman container restore takes with
// --import-previous. So the parent's images are either in the same
// archive (its NAME/ directory, when someone packed both), or in the
// other export (Options.Parent).

// PodmanPreCheckpoint is the directory of Podman's pre-checkpoint
// (libpod: preCheckpointDir), the parent looked for in Options.Parent when
// the checkpoint has no parent link to name it.
const PodmanPreCheckpoint = "pre-checkpoint"

// ErrParentNotInArchive says that a checkpoint/parent link names a
// directory whose images the archive does not hold (and no Options.Parent
// checkpoint holds them either).
var ErrParentNotInArchive = errors.New("the parent checkpoint's images are not in the archive")

// extras are the members of an archive besides checkpoint/ and the
// metadata files: parent links, parent page images and volumes.
type extras struct {
	links   map[string]string          // DIR -> NAME of DIR/parent -> ../NAME
	spans   map[string]map[string]span // in place: DIR -> image -> span (volumes: DIR volumes)
	parents map[string]int             // DIR -> number of page images
}

func newExtras() *extras {
	return &extras{links: map[string]string{}, spans: map[string]map[string]span{}, parents: map[string]int{}}
}

// add records member m (roleLink, roleParent or roleVolume) at sp.
func (x *extras) add(m *member, sp span) {
	if m.role == roleLink {
		x.links[m.key] = m.hdr.Linkname
		return
	}
	dir, file, _ := topDirFile(m.name)
	if x.spans[dir] == nil {
		x.spans[dir] = map[string]span{}
	}
	x.spans[dir][file] = sp
	if m.role == roleParent {
		x.parents[dir]++
	}
}

// ParentLink returns the target directory NAME of the checkpoint's
// checkpoint/parent -> ../NAME link, and whether it has one. For a
// streamed archive it waits for the end of the stream.
func (c *Checkpoint) ParentLink() (string, bool) {
	x := c.extrasDone()
	if x == nil {
		return "", false
	}
	t, ok := x.links[imagesDir]
	return t, ok
}

// extrasDone returns c.x once complete: for a stream, at its end (a
// parent link and the parent's images may come after every other
// member).
func (c *Checkpoint) extrasDone() *extras {
	st := c.stream
	if st == nil {
		return c.x
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.done {
		st.waiting++        // the reader no longer holds back (holdBack)
		st.cond.Broadcast() // it may be waiting there
		for !st.done {
			st.cond.Wait()
		}
		st.waiting--
	}
	return c.x
}

// Parent returns the images of the parent checkpoint of c's images
// (implements criuimg.ParentSource through the images' own Parent for a
// directory): an error wrapping fs.ErrNotExist when c has no parent link,
// ErrParentNotInArchive when the images it names are nowhere. The
// source returned has a Parent too, so that the chain is followed.
func (c *Checkpoint) Parent() (criuimg.Source, error) {
	if c.kind == KindDirectory {
		if ps, ok := c.Images.(criuimg.ParentSource); ok {
			src, err := ps.Parent()
			if err != nil && errors.Is(err, fs.ErrNotExist) && c.parent != nil {
				// A dangling link, or none (a directory extracted from an
				// archive: links are not created).
				name := PodmanPreCheckpoint
				if t, lerr := os.Readlink(filepath.Join(c.Images.String(), criuimg.ParentLink)); lerr == nil {
					name = filepath.Base(t)
				}
				return c.parent.imagesFor(name, err)
			}
			return src, err
		}
	}
	return c.parentOf(imagesDir)
}

// parentOf returns the parent images of the directory dir of the
// archive: the target of dir/parent.
func (c *Checkpoint) parentOf(dir string) (criuimg.Source, error) {
	x := c.extrasDone()
	link := fmt.Sprintf("%s: %s/%s", c.path, dir, criuimg.ParentLink)
	if x == nil {
		return nil, &fs.PathError{Op: "readlink", Path: link, Err: fs.ErrNotExist}
	}
	target, ok := x.links[dir]
	if !ok {
		err := &fs.PathError{Op: "readlink", Path: link, Err: fs.ErrNotExist}
		if c.parent != nil && dir == imagesDir {
			return c.parent.imagesFor(PodmanPreCheckpoint, err)
		}
		return nil, err
	}
	link += " -> ../" + target
	if target == imagesDir { // a cycle: openParents names it
		return &parentImages{Source: c.Images, c: c, dir: imagesDir}, nil
	}
	if x.parents[target] == 0 {
		if c.parent != nil {
			return c.parent.imagesFor(target, fmt.Errorf("%s: %w", link, ErrParentNotInArchive))
		}
		return nil, fmt.Errorf("%s: %w (%s/ has no pagemap or pages image)", link, ErrParentNotInArchive, target)
	}
	if st := c.stream; st != nil {
		note := fmt.Sprintf("%s: the parent's images are read from %s/: the archive was read to its end first, its pages files spooled whole (in anonymous files)", link, target)
		st.mu.Lock()
		if !slices.Contains(st.notes, note) {
			st.notes = append(st.notes, note)
		}
		st.mu.Unlock()
	}
	src, err := c.dirSource(target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", link, err)
	}
	return &parentImages{Source: src, c: c, dir: target}, nil
}

// imagesFor returns, from the Options.Parent checkpoint c, the images of the
// parent directory name: c's name/ directory if it has one, else c's own
// images. notFound is the error if c has neither.
func (c *Checkpoint) imagesFor(name string, notFound error) (criuimg.Source, error) {
	if c.kind == KindDirectory {
		d := filepath.Join(c.path, name)
		if st, err := os.Lstat(d); err == nil && st.IsDir() {
			return criuimg.NewDirSource(d)
		}
		if names, err := c.Images.Names(); err == nil && hasPageImages(names) {
			return c.Images, nil
		}
		return nil, fmt.Errorf("%w; nor does %s have them (no %s/, no pagemap images)", notFound, c.path, name)
	}
	x := c.extrasDone()
	if x != nil && x.parents[name] > 0 {
		src, err := c.dirSource(name)
		if err != nil {
			return nil, err
		}
		return &parentImages{Source: src, c: c, dir: name}, nil
	}
	if names, err := c.Images.Names(); err == nil && hasPageImages(names) {
		return &parentImages{Source: c.Images, c: c, dir: imagesDir}, nil
	}
	return nil, fmt.Errorf("%w; nor does %s have them (no %s/, no checkpoint/ page images)", notFound, c.path, name)
}

func hasPageImages(names []string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, "pagemap-") && strings.HasSuffix(n, ".img") {
			return true
		}
	}
	return false
}

// dirSource serves the members dir/* that c keeps (parent page images,
// volumes).
func (c *Checkpoint) dirSource(dir string) (criuimg.Source, error) {
	prefix := dir + "/"
	switch {
	case c.kind == KindDirectory:
		d := filepath.Join(c.path, dir)
		if st, err := os.Lstat(d); err != nil || !st.IsDir() {
			return nil, &fs.PathError{Op: "open", Path: d, Err: fs.ErrNotExist}
		}
		return criuimg.NewDirSource(d)
	case c.dir != "": // extracted
		names := map[string]time.Time{}
		for k, sp := range c.x.spans[dir] {
			names[k] = sp.mtime
		}
		ds, err := criuimg.NewDirSource(filepath.Join(c.dir, dir))
		if err != nil {
			return nil, err
		}
		return &spoolSource{ds: ds, path: c.path, prefix: prefix, names: names}, nil
	case c.kind == KindTar: // in place
		return &tarSource{f: c.f, path: c.path, prefix: prefix, members: c.x.spans[dir]}, nil
	default: // kept in memory and anonymous files
		return &anonSource{path: c.path, prefix: prefix, b: c.blobs}, nil
	}
}

// parentImages are the images of a parent checkpoint in an archive; their
// own parent link is followed in the same archive.
type parentImages struct {
	criuimg.Source
	c   *Checkpoint
	dir string
}

// Parent implements criuimg.ParentSource.
func (p *parentImages) Parent() (criuimg.Source, error) { return p.c.parentOf(p.dir) }
