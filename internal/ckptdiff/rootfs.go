package ckptdiff

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"

	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// rwFile is one entry of a rootfs-diff.tar with its content hash.
type rwFile struct {
	inspect.DiffFile
	mode   int64
	link   string
	sha256 string
}

// hashRootfs reads the checkpoint's rootfs-diff.tar, hashing each regular
// file's content (streamed, never held).
func hashRootfs(c *Checkpoint) (map[string]rwFile, error) {
	out := map[string]rwFile{}
	if c.RootfsDiff == nil {
		return out, nil
	}
	r, err := c.RootfsDiff()
	if err != nil {
		return out, err
	}
	defer r.Close()
	more, err := inspect.WalkRootfsDiff(r, func(d inspect.DiffEntry) error {
		f := rwFile{DiffFile: d.DiffFile, mode: d.Mode, link: d.Link}
		if d.Content != nil {
			h := sha256.New()
			if _, err := io.Copy(h, d.Content); err != nil {
				return fmt.Errorf("%s: %s: %w", inspect.RootfsDiffFile, d.Path, err)
			}
			f.sha256 = hex.EncodeToString(h.Sum(nil))
		}
		out["/"+d.Path] = f
		return nil
	})
	if err == nil && more {
		err = fmt.Errorf("%s: only the first %d entries are compared", inspect.RootfsDiffFile, inspect.MaxDiffEntries)
	}
	return out, err
}

// diffRootfs compares the rw layers and the deleted files.
func diffRootfs(a, b *Checkpoint, showUnchanged bool) ([]RootfsChange, []string) {
	var warns []string
	fa, err := hashRootfs(a)
	if err != nil {
		warns = append(warns, fmt.Sprintf("A: %v", err))
	}
	fb, err := hashRootfs(b)
	if err != nil {
		warns = append(warns, fmt.Sprintf("B: %v", err))
	}
	var out []RootfsChange
	for p, f := range fb {
		c := RootfsChange{Path: p, Type: f.Type, Size: f.Size, SHA256: f.sha256}
		old, ok := fa[p]
		if !ok {
			c.Change = Added
			out = append(out, c)
			continue
		}
		add := func(name, x, y string) { addField(&c.Fields, name, x, y) }
		add("type", old.Type, f.Type)
		add("size", fmt.Sprint(old.Size), fmt.Sprint(f.Size))
		add("mode", fmt.Sprintf("%#o", old.mode), fmt.Sprintf("%#o", f.mode))
		add("link", old.link, f.link)
		add("sha256", old.sha256, f.sha256)
		var keep bool
		if c.Change, keep = fieldsChange(c.Fields, showUnchanged); keep {
			out = append(out, c)
		}
	}
	for p, f := range fa {
		if _, ok := fb[p]; !ok {
			out = append(out, RootfsChange{Change: Removed, Path: p, Type: f.Type, Size: f.Size, SHA256: f.sha256})
		}
	}
	wasDeleted := map[string]bool{}
	for _, p := range a.DeletedFiles {
		wasDeleted[p] = true
	}
	for _, p := range b.DeletedFiles {
		if !wasDeleted[p] {
			out = append(out, RootfsChange{Change: Deleted, Path: p})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, warns
}
