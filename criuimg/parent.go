package criuimg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ParentLink is the name of the link an incremental checkpoint's image
// directory has to its parent's: Podman's checkpoint/parent ->
// ../pre-checkpoint (--pre-checkpoint, then --with-previous), CRIU's
// images/parent made by --prev-images-dir.
const ParentLink = "parent"

// MaxParents bounds the chain of parent checkpoints followed.
const MaxParents = 64

// ParentSource is a Source that may have a parent checkpoint, whose
// pagemap holds the pages marked PE_PARENT in its own (criu/pagemap.c,
// the page-read's parent).
type ParentSource interface {
	Source
	// Parent returns the parent's images; an error wrapping
	// fs.ErrNotExist if there is no parent link.
	Parent() (Source, error)
}

// Parent returns the images of the parent checkpoint: the directory the
// "parent" symbolic link names. The link must be relative and name a
// sibling of the image directory (../NAME: the checkpoint's own
// directory); one that leaves it (absolute, or ../../...) is an error
// naming it.
func (d *DirSource) Parent() (Source, error) {
	link := filepath.Join(d.dir, ParentLink)
	st, err := os.Lstat(link)
	if err != nil {
		return nil, err
	}
	if st.Mode()&fs.ModeSymlink == 0 {
		return nil, fmt.Errorf("%s: not a symbolic link to the parent's images", link)
	}
	target, err := os.Readlink(link)
	if err != nil {
		return nil, err
	}
	clean := filepath.Clean(target)
	parts := strings.Split(clean, string(filepath.Separator))
	if filepath.IsAbs(target) || len(parts) != 2 || parts[0] != ".." || parts[1] == ".." || parts[1] == "." {
		return nil, fmt.Errorf("%s -> %s: the parent link leaves the checkpoint (it must name a sibling directory, ../NAME): refused", link, target)
	}
	dir := filepath.Join(filepath.Dir(d.dir), parts[1])
	if st, err := os.Lstat(dir); err != nil {
		return nil, fmt.Errorf("%s -> %s: %w", link, target, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s -> %s: not a directory (a link there is not followed)", link, target)
	}
	return NewDirSource(dir)
}

// errNoParent says that pages are marked in a parent that the checkpoint
// does not have.
var errNoParent = errors.New("no parent checkpoint")

// openParents opens, for the pagemap name of src, the chain of parent
// indexes its PE_PARENT runs need: idx.parent, its parent, ... as long as
// an index has PE_PARENT runs. A parent link that cannot be followed, a
// cycle, or a parent without the pagemap is an error naming them. Without
// a parent link at all it returns errNoParent.
func openParents(src Source, idx *PageIndex, pageSize uint64) error {
	seen := map[string]bool{src.String(): true}
	cur, curSrc := idx, src
	for depth := 0; hasParentRuns(cur); depth++ {
		ps, ok := curSrc.(ParentSource)
		if !ok {
			if cur == idx {
				return errNoParent
			}
			return fmt.Errorf("%s: pages are in a parent checkpoint, which %s cannot have", cur.Name, curSrc)
		}
		psrc, err := ps.Parent()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && cur == idx {
				return errNoParent
			}
			return fmt.Errorf("%s marks pages in the parent checkpoint (PE_PARENT, the first at %#x): %w", filepath.Join(curSrc.String(), cur.Name), firstParentAddr(cur), err)
		}
		if depth >= MaxParents {
			return fmt.Errorf("%s: more than %d parent checkpoints: refused", filepath.Join(curSrc.String(), ParentLink), MaxParents)
		}
		if seen[psrc.String()] {
			return fmt.Errorf("%s -> %s: the parent links form a cycle: refused", filepath.Join(curSrc.String(), ParentLink), psrc)
		}
		seen[psrc.String()] = true
		p, err := ReadPageIndex(psrc, cur.Name, pageSize)
		if err != nil {
			return fmt.Errorf("parent checkpoint %s: %w", psrc, err)
		}
		p.src = psrc
		cur.parent = p
		cur, curSrc = p, psrc
	}
	return nil
}

// firstParentAddr is the address of x's first run marked PE_PARENT.
func firstParentAddr(x *PageIndex) uint64 {
	for _, r := range x.Runs {
		if !r.InFile() && r.Flags&PEParent != 0 {
			return r.Addr
		}
	}
	return 0
}

func hasParentRuns(x *PageIndex) bool {
	for _, r := range x.Runs {
		if !r.InFile() && r.Flags&PEParent != 0 {
			return true
		}
	}
	return false
}

// parentExtents calls fn for the extents of [start, end) of v that the run
// of x marks PE_PARENT: the parent's pages, recursively. A page the parent
// does not hold is an error naming the parent's pagemap and the address.
func (x *PageIndex) parentExtents(delta uint64, v *VMA, start, end uint64, fn func(Extent) error) error {
	p := x.parent
	missing := func(s, e uint64) error {
		return fmt.Errorf("%s: the pages at %#x-%#x are marked in the parent checkpoint (PE_PARENT), but %s lacks them",
			x.Name, s, e, filepath.Join(p.src.String(), p.Name))
	}
	return walkRuns(p, delta, v, start, end, fn, missing)
}
