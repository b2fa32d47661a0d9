// Package archive opens a checkpoint wherever it lies: a CRIU image
// directory, an extracted container checkpoint directory, or a container
// checkpoint archive as Kubernetes/CRI-O (checkpoint-<pod>_<ns>-<container>-<ts>.tar)
// and Podman (podman container checkpoint --export) write them, plain or
// compressed with gzip or zstd. It gives the CRIU images as a
// criuimg.Source, the container's metadata files, and rootfs-diff.tar.
//
// # Layouts
//
// A container checkpoint (archive or extracted directory) holds
//
//	checkpoint/       the CRIU images (inventory.img, pstree.img, ...)
//	config.dump       JSON: container name, id, image, runtime, ...
//	spec.dump         JSON: the OCI runtime spec
//	stats-dump        CRIU dump statistics
//	stats-restore     CRIU restore statistics (after a restore)
//	network.status    network state
//	dump.log          CRIU's log (CRI-O and the kubelet only)
//	bind.mounts       bind mounts (CRI-O and the kubelet only)
//	ctr.log           the container's log (Podman)
//	rootfs-diff.tar   the files the container changed
//
// plus files this package ignores (devshm-checkpoint.tar, artifacts/, ...).
// A CRI-O pod checkpoint holds several containers laid out so, each in a
// directory (or a nested archive) of its own; see pod.go, ReadPod and
// Options.Container.
// A CRIU image directory holds the images themselves (and often dump.log
// and stats-dump next to them).
//
// # How archives are read
//
// The format is recognised by content, never by the file's name: gzip
// (1f 8b), zstd (28 b5 2f fd, or a skippable frame), else tar.
//
//   - A plain tar is read in place: its headers are indexed once (archive/tar
//     over the file, seeking over the data) and each member's data offset
//     and size are recorded. Images are served as sections of the archive
//     file; they implement criuimg.OSFile (the archive's *os.File and the
//     member's data offset) so that a core writer can copy pages with
//     copy_file_range. Nothing is extracted.
//   - A compressed archive is read in one streaming pass and the members
//     this package needs (checkpoint/*, the metadata files, rootfs-diff.tar)
//     are kept: small ones in memory (16 MiB in all), the others in
//     anonymous files (O_TMPFILE under Options.TempDir, or a file removed
//     right after it is created) used by descriptor only, so that nothing
//     outlives the process, however it ends. Other members are read and
//     discarded. Close frees them.
//   - With Options.Stream, Open of a compressed archive returns at once and
//     the stream is read while the caller works: a member is waited for by
//     Source.Open, a pages-*.img member is read while it streams, and the
//     caller says what it needs of each pages file (Checkpoint.Consume:
//     read once in order, freed as it goes; Checkpoint.Retain: only some
//     ranges kept). Checkpoint.Ahead gives the images read before the
//     first pages file (Podman's writer sorts the names: inventory, core,
//     mm and pagemap images come before the pages, pstree.img after them).
//   - With Options.ExtractDir, an archive (plain or compressed) is
//     extracted there instead, every member of it (regular files and
//     directories at any depth; links are not created), and the files are
//     kept after Close.
//
// The container's metadata files are offered as one fs.FS (Meta), with
// their modification times and one size limit (MaxMetaSize).
//
// # Hostile archives
//
// An archive is untrusted input. Open refuses it, with an error naming the
// member, when a member's name is absolute, has a ".." component or is
// longer than PATH_MAX (4096 bytes), or an image's name is longer than
// NAME_MAX (255); when a symbolic or hard link lies in checkpoint/ or has a
// needed name, or points outside the archive (absolute target or ".."
// component) anywhere; on any device node or FIFO; on a duplicate of a
// member it needs; on a sparse member it needs (archive/tar would write its
// holes out in full); on a member whose data is shorter than its declared
// size (truncated archive); on more members than Options.MaxMembers, a tar
// stream longer than Options.MaxBytes or more than Options.MaxBytes of
// spooled data (tar bomb). Only the names of the members it needs are kept
// in memory. Named files are only ever created inside the extract
// directory, through an os.Root, with O_CREATE|O_EXCL|O_NOFOLLOW and mode
// 0600 (directories 0700): links are never created and never followed. On
// error nothing is left behind: anonymous files are closed and what was
// extracted into ExtractDir is removed again. Zstd frames are decoded with
// a bounded window (ZstdMaxWindow).
package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Default limits against tar bombs; Options can raise them.
const (
	DefaultMaxMembers = 100000
	DefaultMaxBytes   = 64 << 30 // 64 GiB
)

// MaxMetaSize bounds a metadata file (config.dump, spec.dump, stats-dump,
// ...; not rootfs-diff.tar) that Meta opens: its readers take it whole
// into memory. Meta refuses a larger one.
const MaxMetaSize = 16 << 20

// ZstdMaxWindow bounds the window of a zstd frame, hence the decoder's
// memory. Every standard compression level fits (level 22 and --long use
// 128 MiB windows at most); a frame that asks for more is refused.
const ZstdMaxWindow = 128 << 20

// Kinds returned by Checkpoint.Kind.
const (
	KindDirectory = "directory"
	KindTar       = "tar"
	KindTarGzip   = "tar+gzip"
	KindTarZstd   = "tar+zstd"
)

// The names of the files of a container checkpoint that Meta gives.
var metaNames = []string{"config.dump", "spec.dump", "stats-dump", "stats-restore", "network.status", "dump.log", "bind.mounts", "ctr.log",
	"status", "status.dump", "container.log", "deleted.files", "io.kubernetes.cri-o.LogPath"} // containerd, CRI-O (inspect/engine.go)

// rootfsDiff is the name of the container's changed-files tar.
const rootfsDiff = "rootfs-diff.tar"

func isMetaName(name string) bool { return slices.Contains(metaNames, name) }

// Options tune Open. The zero value is fine.
type Options struct {
	// TempDir is the directory under which a compressed archive is spooled
	// ("" = os.TempDir()).
	TempDir string
	// ExtractDir, if set, receives the extracted files of an archive
	// (plain or compressed) and keeps them after Close: checkpoint/ and the
	// metadata files, laid out as in the archive, so that the directory can
	// be opened again later. It must not exist (it is created with mode
	// 0700; its parent must exist) or be an empty directory. Ignored when
	// Open is given a directory.
	ExtractDir string
	// MaxMembers bounds the number of members of an archive
	// (0 = DefaultMaxMembers).
	MaxMembers int
	// MaxBytes bounds the length of an archive's uncompressed tar stream,
	// headers and data of all members included (0 = DefaultMaxBytes).
	MaxBytes int64
	// Stream, for a compressed archive without ExtractDir, makes Open
	// return at once and read the archive while the caller works: see
	// Checkpoint.Ahead, Consume, Wait and Notes. Errors of the archive
	// then come from the Source's methods (and Wait), not from Open.
	Stream bool
	// Container, for a pod checkpoint archive (pod.go), is the directory
	// of the one container to open ("<id>-<name>", a PodContainer's Dir):
	// its members are read as a container checkpoint's, every other
	// member is validated and skipped. Empty for any other checkpoint.
	Container string
	// OnRead, if set, is called with the number of bytes of the archive
	// file read, as a compressed archive is read (for a progress display;
	// from the goroutine that reads, with Stream).
	OnRead func(n int64)
	// Parent, if set, is the checkpoint holding the parent images that
	// the archive's checkpoint/parent link names but the archive lacks:
	// the export of the pre-checkpoint (an archive, or a directory with
	// the link's NAME/ in it), or the parent's image directory itself.
	// It is opened with the same limits (and PreCheckpoint), never
	// extracted, and closed with the checkpoint.
	Parent string
	// PreCheckpoint accepts an archive without checkpoint/ images when it
	// has a directory of page images: the export of a pre-checkpoint
	// (Podman's --pre-checkpoint --export writes pre-checkpoint/ instead
	// of checkpoint/), given as another checkpoint's Options.Parent.
	PreCheckpoint bool
	// Context, if set, stops the extraction or spooling of an archive
	// when it is canceled: Open then fails with the context's error and
	// removes what it wrote, as on any other error.
	Context context.Context
	// OnPages, if set, is called with Stream by the goroutine that reads
	// the archive with every chunk of a pages-*.img member of the
	// checkpoint's images (name is the image's, e.g. "pages-1.img"), in
	// order, as it streams: all of its bytes, whether the Checkpoint
	// keeps them (Retain) or not. b is valid only during the call. (diff
	// hashes the pages of a compressed archive so, without keeping them.)
	OnPages func(name string, off int64, b []byte)
	// Decoders is the number of goroutines decoding a zstd archive (0:
	// the default, 4; see zstdConcurrency). A caller reading several
	// archives at once gives 1: the archives are its concurrency.
	Decoders int
}

func (o Options) withDefaults() Options {
	if o.MaxMembers <= 0 {
		o.MaxMembers = DefaultMaxMembers
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return o
}

// Checkpoint is an opened checkpoint. Close it when done: it may hold an
// open archive file and a temporary directory.
type Checkpoint struct {
	// Images are the CRIU images (decode them with criuimg.Open).
	Images criuimg.Source

	path   string
	kind   string
	dir    string         // where the files are (extracted), "" if in place
	top    criuimg.Source // the top-level files (metadata, rootfs-diff.tar)
	f      *os.File       // the archive, when read in place
	blobs  *blobs         // the members kept from a compressed archive
	stream *stream        // Options.Stream: the stream being read
	x      *extras        // parent links, parent images and volumes seen
	parent *Checkpoint    // Options.Parent: where parent images not in the archive are
	closed bool
}

// Kind tells how the checkpoint is stored: "directory", "tar", "tar+gzip"
// or "tar+zstd".
func (c *Checkpoint) Kind() string { return c.kind }

// Path is the path given to Open.
func (c *Checkpoint) Path() string { return c.path }

// Dir is the directory holding the checkpoint's files: the directory given
// to Open, or ExtractDir; "" for an archive read in place or kept in
// memory and anonymous files.
func (c *Checkpoint) Dir() string { return c.dir }

// RootfsDiff opens rootfs-diff.tar, the files the container changed, as a
// File (an archive member read in place implements criuimg.OSFile). Close
// the File when done. A checkpoint without it gives an error wrapping
// fs.ErrNotExist.
func (c *Checkpoint) RootfsDiff() (criuimg.File, error) {
	if c.top == c.Images {
		return nil, fmt.Errorf("%s: %s: %w", c.path, rootfsDiff, fs.ErrNotExist)
	}
	return c.top.Open(rootfsDiff)
}

// Close releases the archive file and removes the spool directory, if any
// (never ExtractDir). Files opened from the checkpoint must not be used
// afterwards.
func (c *Checkpoint) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	if c.f != nil {
		errs = append(errs, c.f.Close())
	}
	if c.parent != nil {
		errs = append(errs, c.parent.Close())
	}
	if c.stream != nil {
		// The reading goroutine may still write: stop it first (the
		// descriptors are freed when the process ends anyway).
		c.stream.mu.Lock()
		for _, g := range c.stream.grow {
			g.closed = true
		}
		errs = append(errs, c.blobs.close())
		c.stream.mu.Unlock()
	} else if c.blobs != nil {
		errs = append(errs, c.blobs.close())
	}
	return errors.Join(errs...)
}

// Open opens the checkpoint at path: a CRIU image directory, a directory
// with checkpoint/ inside (an extracted container checkpoint), or a
// container checkpoint archive (tar, tar+gzip, tar+zstd; see the package
// documentation).
func Open(path string, opts Options) (*Checkpoint, error) {
	opts = opts.withDefaults()
	if strings.HasSuffix(opts.Container, nestedSuffix) {
		return openNested(path, opts) // pod.go
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if opts.Parent != "" {
		po := opts
		po.Parent, po.ExtractDir, po.Stream, po.PreCheckpoint = "", "", false, true
		p, err := Open(opts.Parent, po)
		if err != nil {
			return nil, fmt.Errorf("the parent checkpoint: %w", err)
		}
		opts.Parent = ""
		c, err := Open(path, opts)
		if err != nil {
			p.Close()
			return nil, err
		}
		c.parent = p
		return c, nil
	}
	if st.IsDir() {
		return openDir(path)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file or a directory", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	c, err := openFile(path, f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	if c.f != f {
		f.Close()
	}
	return c, nil
}

func openDir(path string) (*Checkpoint, error) {
	c := &Checkpoint{path: path, kind: KindDirectory, dir: path}
	sub := filepath.Join(path, "checkpoint")
	// Lstat: a checkpoint/ that is a symlink is not followed out of the
	// directory the user named (the images then are looked for in path).
	if st, err := os.Lstat(sub); err == nil && st.IsDir() {
		img, err := criuimg.NewDirSource(sub)
		if err != nil {
			return nil, err
		}
		top, err := criuimg.NewDirSource(path)
		if err != nil {
			return nil, err
		}
		c.Images, c.top = img, top
		return c, nil
	}
	if st, err := os.Lstat(filepath.Join(path, PodOptionsFile)); err == nil && st.Mode().IsRegular() {
		if _, err := os.Lstat(filepath.Join(path, "inventory.img")); err != nil {
			return nil, &PodError{Path: path} // an extracted pod checkpoint
		}
	}
	img, err := criuimg.NewDirSource(path)
	if err != nil {
		return nil, err
	}
	c.Images, c.top = img, img
	return c, nil
}

// compression recognised from the first bytes of a file.
type compression int

const (
	compNone compression = iota
	compGzip
	compZstd
)

func sniff(path string, head []byte) (compression, error) {
	switch {
	case len(head) == 0:
		return 0, fmt.Errorf("%s: empty file", path)
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return compGzip, nil
	case len(head) >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd:
		return compZstd, nil
	case len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18:
		return compZstd, nil // skippable frame first
	case len(head) >= 6 && string(head[:6]) == "\xfd7zXZ\x00":
		return 0, fmt.Errorf("%s: xz-compressed: not supported (only tar, gzip and zstd)", path)
	case len(head) >= 3 && string(head[:3]) == "BZh":
		return 0, fmt.Errorf("%s: bzip2-compressed: not supported (only tar, gzip and zstd)", path)
	case len(head) >= 4 && string(head[:4]) == "\x04\x22\x4d\x18":
		return 0, fmt.Errorf("%s: lz4-compressed: not supported (only tar, gzip and zstd)", path)
	case len(head) >= 4 && string(head[:4]) == "PK\x03\x04":
		return 0, fmt.Errorf("%s: a zip file: not supported (only tar, gzip and zstd)", path)
	}
	return compNone, nil
}

// sniffFile checks that the archive f (named path) is a regular file and
// tells its compression from its first bytes.
func sniffFile(path string, f *os.File) (os.FileInfo, compression, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: not a regular file", path)
	}
	head := make([]byte, 8)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, 0, err
	}
	comp, err := sniff(path, head[:n])
	return st, comp, err
}

func openFile(path string, f *os.File, opts Options) (*Checkpoint, error) {
	st, comp, err := sniffFile(path, f)
	if err != nil {
		return nil, err
	}
	if comp == compNone && opts.ExtractDir == "" {
		return openInPlace(path, f, st.Size(), opts)
	}
	return openSpooled(path, f, comp, opts)
}

// names returns the sorted keys of m.
func names[V any](m map[string]V) []string {
	s := make([]string, 0, len(m))
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
