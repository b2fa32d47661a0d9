// Package carve recovers what a checkpoint holds besides process memory:
// deleted files (CRIU ghost files), memfd contents, executables, the files
// a container changed (rootfs-diff.tar), tmpfs contents, pipe, FIFO, tty
// and socket buffers, and each process's environment. Each is an Artifact:
// plain data naming where it came from, with a streaming source of its
// bytes. Writing artifacts out is the caller's business.
//
// Everything comes from an untrusted checkpoint: sizes are checked by the
// criuimg decoders against the images, names are escaped by FileName.
package carve

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/bashhist"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// Kind is the kind of an artifact.
type Kind string

// The kinds of artifacts.
const (
	KindGhost    Kind = "ghost"     // a deleted file kept open or mapped (ghost-file-N.img)
	KindMemfd    Kind = "memfd"     // a memfd's contents (memfd.img, pagemap-shmem-N.img)
	KindExe      Kind = "exe"       // a process's executable, when the checkpoint holds it
	KindRootfs   Kind = "rootfs"    // a file the container added or changed (rootfs-diff.tar)
	KindTmpfs    Kind = "tmpfs"     // CRIU's archive of a tmpfs mount (tmpfs-dev-N.tar.gz.img), and each file in it
	KindPipe     Kind = "pipe"      // a pipe's buffer (pipes-data.img)
	KindFifo     Kind = "fifo"      // a FIFO's buffer (fifo-data.img)
	KindTTY      Kind = "tty"       // a pty's buffered input (tty-data.img)
	KindSkQueue  Kind = "sk-queue"  // a packet queued on a socket (sk-queues.img)
	KindTCPQueue Kind = "tcp-queue" // a TCP socket's receive or send queue (tcp-stream-N.img)
	KindEnv      Kind = "env"       // a process's environment area (NUL-separated)
	KindHistory  Kind = "history"   // a bash's command history recovered from its heap (HISTFILE format)
	KindVolume   Kind = "volume"    // a file of a named volume (Podman's volumes/NAME.tar)
)

// Kinds lists every kind, in the order Carve produces them.
var kinds = []Kind{KindGhost, KindMemfd, KindExe, KindRootfs, KindTmpfs, KindPipe, KindFifo, KindTTY, KindSkQueue, KindTCPQueue, KindEnv, KindHistory, KindVolume}

// Kinds returns every kind, in the order Carve produces them.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, bool) {
	for _, k := range kinds {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

// Ref is a process's use of an artifact's source: an fd, its executable,
// or a mapping.
type Ref struct {
	Pid uint32 `json:"pid"`
	FD  int    `json:"fd"`  // -1: not an fd
	Use string `json:"use"` // "fd", "exe", "map"
}

// Artifact is one recovered object.
type Artifact struct {
	Kind Kind
	// Pid and FD are the first process and fd that hold it (0 and -1
	// when none does: a pipe buffer of a closed end, a rootfs file).
	Pid  uint32
	FD   int
	Refs []Ref
	// Path is the object's path in the container ("" if it has none),
	// Label a short name of what it is (a queue, a memfd's name).
	Path  string
	Label string
	// Image and Entry name the CRIU image (or rootfs-diff.tar member)
	// and entry holding the bytes.
	Image string
	Entry int
	Size  int64
	Mode  uint32 // permission bits recorded, 0 if none
	// Open returns a reader of the Size bytes. Each call starts over. It
	// may be called only until the emit call that got the artifact
	// returns (Carve then releases what it opened).
	Open func() (io.ReadCloser, error)
}

// Options selects what Carve produces.
type Options struct {
	// Pid limits the per-process artifacts (ghost, memfd, exe, pipe,
	// fifo, queues, env) to one process's; 0 for all.
	Pid uint32
	// Kinds limits the kinds; nil or empty for all.
	Kinds []Kind
	// RootfsDiff is rootfs-diff.tar, or nil.
	RootfsDiff criuimg.File
	// Volumes are the container's named volumes (volumes/NAME.tar).
	Volumes []VolumeTar
	// PageSize is the page size of shmem pagemaps (memfds); 0: the first
	// process's (AT_PAGESZ), or 4096.
	PageSize uint64
	// Report is inspect's report of the same checkpoint, when the
	// caller has one: its processes' files and its mounts say who holds
	// each object. nil: Carve runs inspect.Inspect itself.
	Report *inspect.Report
}

// Carve calls emit with each artifact of ck, kind by kind. A problem with
// one image or object is passed to problem (if not nil) and the others are
// still carved; an error from emit stops Carve and is returned.
func Carve(ck *criuimg.Checkpoint, opts Options, emit func(Artifact) error, problem func(error)) error {
	if problem == nil {
		problem = func(error) {}
	}
	c := &carver{ck: ck, opts: opts, emit: emit, problem: problem}
	want := map[Kind]bool{}
	for _, k := range opts.Kinds {
		want[k] = true
	}
	if opts.Pid != 0 {
		if _, ok := ck.Proc(opts.Pid); !ok {
			return fmt.Errorf("%s: %w: %d", ck.Src, ErrNoPid, opts.Pid)
		}
	}
	rep := opts.Report
	if rep == nil {
		var err error
		if rep, err = inspect.Inspect(ck, inspect.Options{}); err != nil {
			return err
		}
	}
	c.indexRefs(rep)
	if c.opts.PageSize == 0 {
		c.opts.PageSize = 4096
		for _, f := range c.facts() {
			if f.pageSize != 0 {
				c.opts.PageSize = f.pageSize
				break
			}
		}
	}
	steps := []struct {
		k  Kind
		fn func() error
	}{
		{KindGhost, c.ghosts}, {KindMemfd, c.memfds}, {KindExe, c.exes}, {KindRootfs, c.rootfs},
		{KindTmpfs, c.tmpfs}, {KindPipe, func() error { return c.pipes(false) }}, {KindFifo, func() error { return c.pipes(true) }},
		{KindTTY, c.ttys}, {KindSkQueue, c.skQueues}, {KindTCPQueue, c.tcpQueues}, {KindEnv, c.envs},
		{KindHistory, c.histories}, {KindVolume, c.volumes},
	}
	for _, s := range steps {
		if len(want) > 0 && !want[s.k] {
			continue
		}
		if err := s.fn(); err != nil {
			return err
		}
	}
	return nil
}

// ErrNoPid is wrapped by the error about a pid not in the checkpoint.
var ErrNoPid = errors.New("no such process in the checkpoint")

type carver struct {
	ck        *criuimg.Checkpoint
	opts      Options
	emit      func(Artifact) error
	problem   func(error)
	byFile    map[uint32][]Ref // files.img id -> fds
	byPipe    map[uint32][]Ref // pipe id -> fds
	sockIno   map[uint32][]Ref // socket inode -> fds
	remaps    *criuimg.RemapTable
	procFacts []procFacts
	mounts    map[uint32]string // mount id -> mountpoint (mountpoints-N.img)
}

func (c *carver) indexRefs(rep *inspect.Report) {
	c.mounts = map[uint32]string{}
	for _, m := range rep.Mounts {
		c.mounts[m.MountID] = m.Mountpoint
	}
	c.byFile, c.byPipe, c.sockIno = map[uint32][]Ref{}, map[uint32][]Ref{}, map[uint32][]Ref{}
	for _, p := range rep.Processes {
		for _, f := range p.Files {
			r := Ref{Pid: p.Pid, FD: int(f.FD), Use: "fd"}
			c.byFile[f.ID] = append(c.byFile[f.ID], r)
			if f.Type == "pipe" || f.Type == "fifo" {
				c.byPipe[f.PipeID] = append(c.byPipe[f.PipeID], r)
			}
			if f.Socket != nil && f.Socket.Inode != 0 {
				c.sockIno[f.Socket.Inode] = append(c.sockIno[f.Socket.Inode], r)
			}
		}
	}
}

// wanted filters refs by Options.Pid and reports whether any is left (or
// whether the object may be listed without a holder: unheld).
func (c *carver) wanted(refs []Ref, unheld bool) ([]Ref, bool) {
	if c.opts.Pid == 0 {
		return refs, len(refs) > 0 || unheld
	}
	var out []Ref
	for _, r := range refs {
		if r.Pid == c.opts.Pid {
			out = append(out, r)
		}
	}
	return out, len(out) > 0
}

func (c *carver) send(a Artifact, refs []Ref) error {
	a.Refs = refs
	a.FD = -1
	if len(refs) > 0 {
		a.Pid, a.FD = refs[0].Pid, refs[0].FD
	}
	return c.emit(a)
}

// procFacts is what the file kinds need of a process: its executable and
// the files it maps (read once; the process is closed at once, so that
// open pages files do not grow with the processes).
type procFacts struct {
	pid      uint32
	exeID    uint32
	exePath  string
	mapped   map[uint32]bool // files.img ids of file mappings
	pageSize uint64
}

// facts loads each process once for its procFacts; a process that
// cannot be loaded is a problem and has none.
func (c *carver) facts() []procFacts {
	if c.procFacts != nil {
		return c.procFacts
	}
	c.procFacts = []procFacts{}
	for _, pid := range c.ck.Pids() {
		p, err := c.ck.LoadProcess(pid)
		if err != nil {
			if p != nil {
				p.Close()
			}
			if !errors.Is(err, criuimg.ErrZombie) {
				c.problem(err)
			}
			continue
		}
		f := procFacts{pid: pid, exePath: p.ExePath, mapped: map[uint32]bool{}, pageSize: p.PageSize}
		if p.MM != nil {
			f.exeID = p.MM.GetExeFileId()
		}
		for _, v := range p.VMAs {
			if v.FileID != 0 && !v.Anon() {
				f.mapped[v.FileID] = true
			}
		}
		p.Close()
		c.procFacts = append(c.procFacts, f)
	}
	return c.procFacts
}

// withProcess loads pid, calls fn with it and closes it; a process that
// cannot be loaded (a zombie has no memory) is skipped.
func (c *carver) withProcess(pid uint32, fn func(p *criuimg.Process) error) error {
	p, err := c.ck.LoadProcess(pid)
	if p != nil {
		defer p.Close()
	}
	if err != nil {
		return nil // already a problem of facts()
	}
	return fn(p)
}

// fileRefs are the fds, exes and mappings of files.img id.
func (c *carver) fileRefs(id uint32) []Ref {
	refs := append([]Ref(nil), c.byFile[id]...)
	for _, f := range c.facts() {
		if f.exeID == id {
			refs = append(refs, Ref{Pid: f.pid, FD: -1, Use: "exe"})
		}
		if f.mapped[id] {
			refs = append(refs, Ref{Pid: f.pid, FD: -1, Use: "map"})
		}
	}
	return refs
}

func (c *carver) ghostTable() *criuimg.RemapTable {
	if c.remaps == nil {
		t, err := c.ck.ReadRemaps()
		if err != nil {
			c.problem(err)
			t = &criuimg.RemapTable{}
		}
		c.remaps = t
	}
	return c.remaps
}

func (c *carver) ghostArtifact(kind Kind, r criuimg.Remap, refs []Ref) error {
	g, err := c.ck.OpenGhost(r)
	if err != nil {
		c.problem(fmt.Errorf("file id %#x (%q, remap-fpath.img entry %d): %w", r.FileID, r.Path, r.Entry, err))
		return nil
	}
	size, mode, reg, image := g.Size, g.Mode, g.Regular(), g.Image
	g.Close()
	if !reg {
		return nil // a deleted directory, symlink or device: no contents
	}
	src := c.ck.Src
	return c.send(Artifact{Kind: kind, Path: r.Path, Image: image, Entry: 0, Size: size, Mode: mode & 0o7777,
		Open: func() (io.ReadCloser, error) {
			g, err := criuimg.OpenGhostImage(src, r.RemapID)
			if err != nil {
				return nil, err
			}
			return readCloser{g.Contents(), g}, nil
		}}, refs)
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (c *carver) ghosts() error {
	for _, r := range c.ghostTable().All() {
		if r.Kind != criuimg.RemapGhost {
			continue
		}
		refs, ok := c.wanted(c.fileRefs(r.FileID), true)
		if !ok {
			continue
		}
		if err := c.ghostArtifact(KindGhost, r, refs); err != nil {
			return err
		}
	}
	return nil
}

func (c *carver) memfdArtifact(kind Kind, in criuimg.MemfdInode, refs []Ref) error {
	m, err := c.ck.OpenMemfd(in, c.opts.PageSize)
	if err != nil {
		c.problem(err)
		return nil
	}
	size := m.Size()
	m.Close()
	ck, ps := c.ck, c.opts.PageSize
	return c.send(Artifact{Kind: kind, Label: in.Name, Path: "memfd:" + in.Name, Image: fmt.Sprintf("memfd.img + pagemap-shmem-%d.img", in.Shmid),
		Entry: in.Entry, Size: size, Mode: in.Mode & 0o7777,
		Open: func() (io.ReadCloser, error) { return ck.OpenMemfd(in, ps) }}, refs)
}

// memfdRefs lists the fds, exes and mappings of memfd inode id.
func (c *carver) memfdRefs(in criuimg.MemfdInode) []Ref {
	var refs []Ref
	for fid := range c.byFile {
		if ino, ok := c.ck.MemfdInodeOf(fid); ok && ino == in.InodeID {
			refs = append(refs, c.fileRefs(fid)...)
		}
	}
	for _, f := range c.facts() { // exes by memfd files no fd holds
		if ino, ok := c.ck.MemfdInodeOf(f.exeID); ok && ino == in.InodeID && len(c.byFile[f.exeID]) == 0 {
			refs = append(refs, Ref{Pid: f.pid, FD: -1, Use: "exe"})
		}
	}
	sort.SliceStable(refs, func(i, j int) bool { return refs[i].Use == "fd" && refs[j].Use != "fd" })
	return dedupRefs(refs)
}

func dedupRefs(refs []Ref) []Ref {
	seen := map[Ref]bool{}
	out := refs[:0]
	for _, r := range refs {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

func (c *carver) memfds() error {
	ins, err := c.ck.ReadMemfdInodes()
	if err != nil {
		c.problem(err)
		return nil
	}
	for _, in := range ins {
		refs, ok := c.wanted(c.memfdRefs(in), true)
		if !ok {
			continue
		}
		if err := c.memfdArtifact(KindMemfd, in, refs); err != nil {
			return err
		}
	}
	return nil
}

// exes: a process's executable when it is a ghost file, a memfd or a
// file of the rw layer.
func (c *carver) exes() error {
	var ins []criuimg.MemfdInode
	var diff map[string]diffMember
	for _, f := range c.facts() {
		pid := f.pid
		if c.opts.Pid != 0 && pid != c.opts.Pid || f.exeID == 0 {
			continue
		}
		id := f.exeID
		refs := []Ref{{Pid: pid, FD: -1, Use: "exe"}}
		if r, ok := c.ghostTable().Lookup(id); ok && r.Kind == criuimg.RemapGhost {
			if err := c.ghostArtifact(KindExe, r, refs); err != nil {
				return err
			}
			continue
		}
		if ino, ok := c.ck.MemfdInodeOf(id); ok {
			if ins == nil {
				if ins, _ = c.ck.ReadMemfdInodes(); ins == nil {
					ins = []criuimg.MemfdInode{}
				}
			}
			for _, in := range ins {
				if in.InodeID == ino {
					if err := c.memfdArtifact(KindExe, in, refs); err != nil {
						return err
					}
				}
			}
			continue
		}
		if c.opts.RootfsDiff == nil {
			continue
		}
		if diff == nil {
			diff = map[string]diffMember{}
			if err := c.eachDiff(func(m diffMember) error { diff[m.path] = m; return nil }); err != nil {
				c.problem(err)
			}
		}
		exe := f.exePath
		if m, ok := diff[path.Clean("/"+exe)]; ok && exe != "" {
			if err := c.send(c.diffArtifact(KindExe, m), refs); err != nil {
				return err
			}
		}
	}
	return nil
}

// diffMember is a regular file of rootfs-diff.tar.
type diffMember struct {
	path      string // absolute, cleaned
	off, size int64
	mode      int64
	index     int
}

// eachDiff walks the regular files of rootfs-diff.tar (through
// inspect.WalkRootfsDiff, counting the bytes its tar reader consumed to
// know where each file's bytes lie in the archive).
func (c *carver) eachDiff(fn func(diffMember) error) error {
	f := c.opts.RootfsDiff
	// A gzip-compressed rw layer (containerd writes one) has no member
	// offsets to read the files at: refused by name, not misread.
	var magic [2]byte
	if n, _ := f.ReadAt(magic[:], 0); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return fmt.Errorf("%s: gzip-compressed (containerd's rw layer): its files are not extracted", inspect.RootfsDiffFile)
	}
	cr := &countReader{r: io.NewSectionReader(f, 0, f.Size())}
	i := -1
	more, err := inspect.WalkRootfsDiff(cr, func(d inspect.DiffEntry) error {
		i++
		if d.Type != "file" {
			return nil
		}
		if d.Size < 0 || d.Size > f.Size()-cr.n {
			return fmt.Errorf("%s: member %d %q: size %d beyond the archive", inspect.RootfsDiffFile, i, d.Path, d.Size)
		}
		return fn(diffMember{path: "/" + d.Path, off: cr.n, size: d.Size, mode: d.Mode, index: i})
	})
	if err == nil && more {
		err = fmt.Errorf("%s: more than %d members: the others are left out", inspect.RootfsDiffFile, inspect.MaxDiffEntries)
	}
	return err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *carver) diffArtifact(kind Kind, m diffMember) Artifact {
	f := c.opts.RootfsDiff
	return Artifact{Kind: kind, Path: m.path, Image: "rootfs-diff.tar", Entry: m.index, Size: m.size, Mode: uint32(m.mode) & 0o7777,
		Open: func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(f, m.off, m.size)), nil
		}}
}

func (c *carver) rootfs() error {
	if c.opts.RootfsDiff == nil || c.opts.Pid != 0 {
		return nil
	}
	var stop error
	err := c.eachDiff(func(m diffMember) error {
		if err := c.send(c.diffArtifact(KindRootfs, m), nil); err != nil {
			stop = err
			return err
		}
		return nil
	})
	if stop != nil {
		return stop
	}
	if err != nil {
		c.problem(err)
	}
	return nil
}

// OpenRootfsFile returns the artifact of the file at name (an absolute
// path in the container) in rootfs-diff.tar, the last member of that
// name; false if the archive has none.
func OpenRootfsFile(diff criuimg.File, name string) (Artifact, bool, error) {
	c := &carver{opts: Options{RootfsDiff: diff}}
	want := path.Clean("/" + name)
	var found *diffMember
	err := c.eachDiff(func(m diffMember) error {
		if m.path == want {
			mm := m
			found = &mm
		}
		return nil
	})
	if err != nil {
		return Artifact{}, false, err
	}
	if found == nil {
		return Artifact{}, false, nil
	}
	return c.diffArtifact(KindRootfs, *found), true, nil
}

func (c *carver) tmpfs() error {
	if c.opts.Pid != 0 {
		return nil
	}
	names, err := c.ck.Src.Names()
	if err != nil {
		c.problem(err)
		return nil
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "tmpfs-dev-") || !strings.HasSuffix(n, ".tar.gz.img") {
			continue
		}
		f, err := c.ck.Src.Open(n)
		if err != nil {
			c.problem(err)
			continue
		}
		size := f.Size()
		f.Close()
		src, name := c.ck.Src, n
		err = c.send(Artifact{Kind: KindTmpfs, Label: strings.TrimSuffix(strings.TrimPrefix(n, "tmpfs-dev-"), ".tar.gz.img") + ".tar.gz",
			Image: n, Size: size, Open: func() (io.ReadCloser, error) {
				f, err := src.Open(name)
				if err != nil {
					return nil, err
				}
				return readCloser{io.NewSectionReader(f, 0, f.Size()), f}, nil
			}}, nil)
		if err != nil {
			return err
		}
		var id uint32
		fmt.Sscanf(strings.TrimPrefix(n, "tmpfs-dev-"), "%d", &id)
		mount, ok := c.mounts[id]
		if !ok {
			mount = fmt.Sprintf("/(mount %d)", id)
		}
		if err := c.tmpfsFiles(src, n, mount); err != nil {
			return err
		}
	}
	return nil
}

func (c *carver) spanArtifact(kind Kind, label string, s criuimg.Span, refs []Ref) error {
	src := c.ck.Src
	return c.send(Artifact{Kind: kind, Label: label, Image: s.Image, Entry: s.Entry, Size: s.Len,
		Open: func() (io.ReadCloser, error) { return s.Open(src) }}, refs)
}

func (c *carver) pipes(fifo bool) error {
	pds, err := c.ck.ReadPipeData(fifo)
	if err != nil {
		c.problem(err)
		return nil
	}
	kind := KindPipe
	if fifo {
		kind = KindFifo
	}
	for _, pd := range pds {
		if pd.Data.Len == 0 {
			continue // CRIU lists empty pipes too
		}
		refs, ok := c.wanted(c.byPipe[pd.PipeID], true)
		if !ok {
			continue
		}
		if err := c.spanArtifact(kind, fmt.Sprintf("pipe-%d", pd.PipeID), pd.Data, refs); err != nil {
			return err
		}
	}
	return nil
}

func (c *carver) ttys() error {
	tds, err := c.ck.ReadTTYData()
	if err != nil {
		c.problem(err)
		return nil
	}
	if c.opts.Pid != 0 {
		return nil // tty-data.img names ttys, not fds
	}
	for _, td := range tds {
		data := td.Data
		if err := c.send(Artifact{Kind: KindTTY, Label: fmt.Sprintf("tty-%d", td.TTYID), Image: "tty-data.img", Entry: td.Entry,
			Size: int64(len(data)), Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(data))), nil }}, nil); err != nil {
			return err
		}
	}
	return nil
}

func (c *carver) skQueues() error {
	qs, err := c.ck.ReadSocketQueues()
	if err != nil {
		c.problem(err)
		return nil
	}
	for i, q := range qs {
		refs, ok := c.wanted(c.byFile[q.SocketID], true)
		if !ok {
			continue
		}
		if err := c.spanArtifact(KindSkQueue, fmt.Sprintf("socket-%d-packet-%d", q.SocketID, i), q.Data, refs); err != nil {
			return err
		}
	}
	return nil
}

func (c *carver) tcpQueues() error {
	var inos []uint32
	for ino := range c.sockIno {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		refs, ok := c.wanted(c.sockIno[ino], false)
		if !ok {
			continue
		}
		ts, err := c.ck.ReadTCPStream(ino)
		if err != nil {
			if !criuimg.IsNotExist(err) {
				c.problem(err)
			}
			continue
		}
		for _, q := range []struct {
			name string
			s    criuimg.Span
		}{{"inq", ts.Inq}, {"outq", ts.Outq}} {
			if q.s.Len == 0 {
				continue
			}
			if err := c.spanArtifact(KindTCPQueue, fmt.Sprintf("tcp-%d-%s", ino, q.name), q.s, refs); err != nil {
				return err
			}
		}
	}
	return nil
}

// MaxEnvArea bounds the environment area read from a process (the kernel
// limits argv and envp together to a quarter of the stack rlimit; 64 MiB
// is far beyond any real one).
const MaxEnvArea = 64 << 20

func (c *carver) envs() error {
	for _, f := range c.facts() {
		pid := f.pid
		if c.opts.Pid != 0 && pid != c.opts.Pid {
			continue
		}
		err := c.withProcess(pid, func(p *criuimg.Process) error {
			if p.MM == nil || p.Mem == nil {
				return nil
			}
			start, end := p.MM.GetMmEnvStart(), p.MM.GetMmEnvEnd()
			if end <= start {
				return nil
			}
			if end-start > MaxEnvArea {
				c.problem(fmt.Errorf("mm-%d.img: environment area %#x-%#x of %d bytes, more than %d", pid, start, end, end-start, MaxEnvArea))
				return nil
			}
			mem := p.Mem
			return c.send(Artifact{Kind: KindEnv, Label: "environ", Image: fmt.Sprintf("mm-%d.img + pagemap-%d.img", pid, pid), Size: int64(end - start),
				Open: func() (io.ReadCloser, error) {
					return io.NopCloser(io.NewSectionReader(mem, int64(start), int64(end-start))), nil
				}}, []Ref{{Pid: pid, FD: -1, Use: "env"}})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// histories: the history of each bash process (comm or executable named
// bash), recovered from its heap by bashhist, written as a HISTFILE with
// timestamps ("#SECONDS" lines before each command), oldest first.
func (c *carver) histories() error {
	for _, f := range c.facts() {
		pid := f.pid
		if c.opts.Pid != 0 && pid != c.opts.Pid {
			continue
		}
		err := c.withProcess(pid, func(p *criuimg.Process) error {
			if !recoversHistory(p) {
				return nil
			}
			ents, err := bashhist.Recover(p)
			if err != nil {
				c.problem(fmt.Errorf("pid %d: %w", pid, err))
				return nil
			}
			if len(ents) == 0 {
				return nil
			}
			var b strings.Builder
			for _, e := range ents {
				if e.Time != 0 {
					fmt.Fprintf(&b, "#%d\n", e.Time)
				}
				b.WriteString(e.Line)
				b.WriteByte('\n')
			}
			text := b.String()
			return c.send(Artifact{Kind: KindHistory, Label: "bash_history", Image: fmt.Sprintf("pagemap-%d.img + pages ([heap])", pid), Size: int64(len(text)),
				Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(text)), nil }}, []Ref{{Pid: pid, FD: -1, Use: "heap"}})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
