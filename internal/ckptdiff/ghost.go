package ckptdiff

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
)

// GhostChange is a deleted file that B's images hold (a ghost file CRIU
// saved: remap-fpath.img GHOST and ghost-file-N.img) and A's do not (same
// path and content).
type GhostChange struct {
	Change string `json:"change"`
	Path   string `json:"path"`
	Image  string `json:"image"` // ghost-file-N.img
	Mode   string `json:"mode"`  // octal st_mode
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // of the contents ("" for no regular file)
	// Where lists its uses in B: "fd 5 of pid 42", "executable of pid 42",
	// "mapping 0x...-0x... of pid 57".
	Where []string `json:"where"`
}

// ghosts reads the ghost files of a checkpoint, keyed by files.img id,
// hashing their contents (streamed).
func ghosts(c *Checkpoint) (map[uint32]*GhostChange, error) {
	out := map[uint32]*GhostChange{}
	t, err := c.Images.ReadRemaps()
	if err != nil {
		return out, err
	}
	var errs []error
	for _, r := range t.All() {
		g, err := c.Images.OpenGhost(r)
		if err != nil {
			continue // linked or procfs remaps: no contents
		}
		gc := &GhostChange{Change: Added, Path: r.Path, Image: g.Image, Mode: fmt.Sprintf("%#o", g.Mode), Size: g.Size}
		if g.Regular() {
			h := sha256.New()
			if _, err := io.Copy(h, g.Contents()); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", g.Image, err))
			} else {
				gc.SHA256 = hex.EncodeToString(h.Sum(nil))
			}
		}
		g.Close()
		out[r.FileID] = gc
	}
	if len(errs) > 0 {
		return out, errs[0]
	}
	return out, nil
}

// diffGhosts lists B's ghost files that A lacks, with their uses in B
// (uses: files.img id -> where).
func diffGhosts(a, b *Checkpoint, uses map[uint32][]string, pids []uint32) ([]GhostChange, []string) {
	var warns []string
	ga, err := ghosts(a)
	if err != nil {
		warns = append(warns, fmt.Sprintf("A: ghost files: %v", err))
	}
	gb, err := ghosts(b)
	if err != nil {
		warns = append(warns, fmt.Sprintf("B: ghost files: %v", err))
	}
	seen := map[[2]string]bool{}
	for _, g := range ga {
		seen[[2]string{g.Path, g.SHA256}] = true
	}
	var out []GhostChange
	for id, g := range gb {
		if seen[[2]string{g.Path, g.SHA256}] {
			continue
		}
		g.Where = uses[id]
		if len(pids) > 0 && len(g.Where) == 0 {
			continue
		}
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return slices.Clip(out), warns
}
