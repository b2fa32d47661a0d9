package archive

import (
	"archive/tar"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/readat"
)

// Streaming (Options.Stream): Open returns as soon as the archive is
// recognised, and one goroutine reads the tar stream while the caller
// works. A member not yet read is waited for by Open; a pages-*.img member
// is served while it streams (ReadAt waits for its bytes). A member the
// caller marks with Consume is read once, in order: what lies more than
// streamBack bytes behind the furthest read is freed (its anonymous file
// gets a hole), the stream waits while the caller is busy and more than
// streamAhead bytes ahead, and once the caller closes the member the rest
// of it is read and dropped. A pages file that streams while nobody reads
// it (its images come after it in the archive, or the caller waits for
// another member) is spooled whole into its anonymous file, and Notes
// says so when it is larger than the read-ahead (streamAhead).
//
// A consumed member that its reader has open is not written to its file
// at all while it streams: from the next chunk on it goes into a ring of
// ringSize bytes in memory (one per stream), which the stream fills only
// as far as the reader has read (minus streamBack, which stays readable),
// so a member read in order is decompressed straight into memory and
// copied once, to the reader. Should the ring be full while a caller
// waits (for this data or another member), what it holds is written to
// the anonymous file and the member goes on as above (spilled).
const (
	streamAhead = 32 << 20
	streamBack  = 4 << 20
	punchStep   = 8 << 20
	ringSize    = 16 << 20
	ringChunk   = 1 << 20
)

var (
	errStreamed    = errors.New("already streamed past: a consumed pages file is read once, in order")
	errNotRetained = errors.New("not kept while the archive streamed (Retain)")
)

// stream is the state shared by the reading goroutine and the callers.
type stream struct {
	path string
	mu   sync.Mutex
	cond *sync.Cond
	b    *blobs
	grow map[string]*growing // pages members, streaming or streamed
	// waiting counts callers blocked for data (in Open or ReadAt): the
	// reader then never holds back.
	waiting    int
	pagesStart bool // the first pages member has been reached
	// ahead are the images read before the first pages member (set when
	// it is reached, if there are any; Ahead).
	ahead     []string
	done      bool
	err       error // why the stream failed (set with done)
	consume   map[string]bool
	retain    map[string][]byteRange // Retain, by pages image name
	dropAll   bool                   // DropPages
	notes     []string
	ringBuf   []byte                                 // the ring, made when first used
	ringOwner *growing                               // the member that has the ring
	x         *extras                                // the parent links (parent.go), complete once done
	onPages   func(name string, off int64, b []byte) // Options.OnPages
}

// byteRange is [off, end) of a file.
type byteRange struct{ off, end int64 }

// covered reports whether [off, end) lies in the union of rs.
func covered(rs []byteRange, off, end int64) bool {
	for off < end {
		found := false
		for _, r := range rs {
			if r.off <= off && off < r.end {
				off, found = r.end, true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// overlaps returns the parts of [off, end) that rs holds.
func overlaps(rs []byteRange, off, end int64) []byteRange {
	var out []byteRange
	for _, r := range rs {
		if s, e := max(r.off, off), min(r.end, end); s < e {
			out = append(out, byteRange{s, e})
		}
	}
	return out
}

// growing is one pages member of a stream.
type growing struct {
	name     string // image name
	f        *os.File
	size     int64 // declared
	mtime    time.Time
	written  int64
	readEnd  int64       // furthest byte read
	reqOff   int64       // furthest offset asked for (a reader skips what it needs not)
	waits    []byteRange // what the ReadAt calls waiting for data ask for
	punched  int64       // bytes freed from the start
	opens    int         // opened and not closed
	opened   bool        // ever opened
	closed   bool        // consumed and closed: the rest is dropped
	complete bool
	// retain, if set, are the only ranges kept (Retain).
	retain    []byteRange
	retaining bool
	// ring, while set, holds [ringLo, written); the file holds what was
	// written before ringBase (= ringLo when the ring was taken).
	ring             []byte
	ringBase, ringLo int64
	spilled          bool // the ring was written out: the file only, from now on
	lent             bool // View has lent some of the ring
}

// ringPos is where offset off of g lies in its ring.
func (g *growing) ringPos(off int64) int { return int((off - g.ringBase) % int64(len(g.ring))) }

// ringCopy copies the ring's bytes [off, off+len(p)) of g into p (both
// within [ringLo, written)).
func (g *growing) ringCopy(p []byte, off int64) {
	for len(p) > 0 {
		i := g.ringPos(off)
		k := copy(p, g.ring[i:])
		p, off = p[k:], off+int64(k)
	}
}

// takeRing gives the stream's ring to g from offset n on, if g is read
// in order by a reader that has it open and no other member has it.
func (st *stream) takeRing(g *growing, n int64) {
	if g.ring != nil || g.spilled || st.ringOwner != nil || g.retaining || g.closed || g.opens == 0 || !st.consume[g.name] {
		return
	}
	if st.ringBuf == nil {
		st.ringBuf = make([]byte, ringSize)
	}
	g.ring, g.ringBase, g.ringLo = st.ringBuf, n, n
	st.ringOwner = g
}

// dropRing ends g's use of the ring (under st.mu). A ring lent (View) to
// a reader that still has g open is left to it: the next member gets a
// new one.
func (st *stream) dropRing(g *growing) {
	if st.ringOwner == g {
		st.ringOwner = nil
		if g.lent && !g.closed {
			st.ringBuf = nil
		}
	}
	g.ring = nil
}

// ringChunkIn reads the next chunk of g, [n, n+want), from r into the
// ring, once the ring has room (or a caller waits: then it spills). It is
// called with st.mu held and returns with it held; done is false when g
// left the ring (closed or spilled) and the caller must go on without it.
func (st *stream) ringChunkIn(path string, m *member, g *growing, r io.Reader, n, want int64, lw *limitWriter) (k int, done bool, err error) {
	need := n + want - int64(len(g.ring)) // the ring must drop what lies below
	free := func() bool { return need <= g.ringLo || need <= max(g.readEnd, g.reqOff)-streamBack }
	// The stream may wait for the reader unless a caller waits for what
	// it cannot give without going on: another member, or bytes of this
	// one that the ring would have to drop first (a read of more than
	// the ring). A reader of this member waiting for bytes the stream
	// has already given goes on by itself.
	mustGoOn := func() bool {
		if st.waiting > len(g.waits) {
			return true
		}
		for _, w := range g.waits {
			if w.end > n && w.off < need {
				return true
			}
		}
		return false
	}
	for !free() && !mustGoOn() && !g.closed {
		st.cond.Wait()
	}
	if g.closed {
		st.dropRing(g)
		return 0, false, nil
	}
	if !free() {
		// A caller waits, maybe for another member: write the ring out.
		lo, ring := g.ringLo, g.ring
		st.mu.Unlock()
		tmp := &growing{ring: ring, ringBase: g.ringBase}
		var werr error
		for off := lo; off < n && werr == nil; {
			i := tmp.ringPos(off)
			e := min(n, off+int64(len(ring)-i))
			_, werr = g.f.WriteAt(ring[i:i+int(e-off)], off)
			off = e
		}
		st.mu.Lock()
		if werr != nil {
			return 0, false, memberError(path, m.hdr.Name, "%v", werr)
		}
		lw.n += n - lo
		if lo > g.ringBase && lo > g.punched {
			punch(g.f, g.punched, lo-g.punched)
			g.punched = lo
		}
		g.spilled = true
		st.dropRing(g)
		return 0, false, nil
	}
	g.ringLo = max(g.ringLo, need)
	ring, i := g.ring, g.ringPos(n)
	st.mu.Unlock()
	// Into the ring, in at most two parts; nobody reads there.
	first := min(want, int64(len(ring)-i))
	k, err = io.ReadFull(r, ring[i:i+int(first)])
	if st.onPages != nil {
		st.onPages(g.name, n, ring[i:i+k])
	}
	if err == nil && first < want {
		var k2 int
		k2, err = io.ReadFull(r, ring[:want-first])
		if st.onPages != nil {
			st.onPages(g.name, n+int64(k), ring[:k2])
		}
		k += k2
	}
	st.mu.Lock()
	return k, true, err
}

func isPagesImage(key string) bool {
	return strings.HasPrefix(key, "pages-") && strings.HasSuffix(key, ".img")
}

// openStream starts reading the tar stream of tr in a goroutine and
// returns the Checkpoint at once; closeDecomp releases the decompressor
// when the stream ends.
func openStream(path string, cr *countReader, tr *tar.Reader, opts Options, kind string, closeDecomp func()) *Checkpoint {
	b := &blobs{dir: opts.TempDir, members: map[string]*blob{}}
	st := &stream{path: path, b: b, grow: map[string]*growing{}, consume: map[string]bool{}, retain: map[string][]byteRange{}, x: newExtras(), onPages: opts.OnPages}
	st.cond = sync.NewCond(&st.mu)
	go func() {
		defer closeDecomp()
		err := st.read(path, cr, tr, opts)
		if err != nil && opts.Context != nil && opts.Context.Err() != nil {
			err = fmt.Errorf("%s: unpacking stopped: %w", path, opts.Context.Err())
		}
		st.mu.Lock()
		st.done, st.err = true, err
		st.pagesStart = true
		st.cond.Broadcast()
		st.mu.Unlock()
	}()
	return &Checkpoint{
		path:   path,
		kind:   kind,
		blobs:  b,
		stream: st,
		x:      st.x,
		Images: &streamSource{st: st, prefix: "checkpoint/"},
		top:    &streamSource{st: st},
	}
}

func (st *stream) read(path string, cr *countReader, tr *tar.Reader, opts Options) error {
	buf := make([]byte, 1<<20)
	lw := &limitWriter{limit: opts.MaxBytes}
	_, err := scan(path, cr, tr, opts, -1, false, func(m *member) error {
		switch m.role { // parent.go: read once the stream has ended
		case roleLink, roleParent, roleVolume:
			st.mu.Lock()
			st.x.add(m, span{mtime: m.hdr.ModTime})
			st.mu.Unlock()
			if m.role == roleLink {
				return nil
			}
		}
		if m.role == roleImage && isPagesImage(m.key) {
			return st.readPages(path, m, tr, lw, buf)
		}
		// Members are kept whole before they are shown.
		tmp := &blobs{dir: st.b.dir, members: map[string]*blob{}, mem: st.b.mem}
		err := keepMember(path, tmp, m, tr, lw, buf)
		st.mu.Lock()
		st.b.files = append(st.b.files, tmp.files...)
		if err == nil {
			st.b.members[m.name] = tmp.members[m.name]
			st.b.mem = tmp.mem
		}
		st.cond.Broadcast()
		st.mu.Unlock()
		return err
	})
	return err
}

// readPages streams one pages member into an anonymous file.
func (st *stream) readPages(path string, m *member, r io.Reader, lw *limitWriter, buf []byte) error {
	size := m.hdr.Size
	if size > lw.limit-lw.n {
		return memberError(path, m.hdr.Name, "%d bytes after %d bytes spooled: more than %d bytes in all (MaxBytes; a tar bomb?)", size, lw.n, lw.limit)
	}
	f, err := newAnonFile(st.b.dir)
	if err != nil {
		return memberError(path, m.hdr.Name, "%v", err)
	}
	g := &growing{name: m.key, f: f, size: size, mtime: m.hdr.ModTime}
	st.mu.Lock()
	if rs, ok := st.retain[m.key]; ok || st.dropAll {
		g.retain, g.retaining = rs, true
	}
	st.b.files = append(st.b.files, f)
	st.grow[m.key] = g
	if !st.pagesStart {
		st.ahead, _ = (&anonSource{path: st.path, prefix: "checkpoint/", b: st.b}).Names()
	}
	st.pagesStart = true
	st.cond.Broadcast()
	st.mu.Unlock()
	var n int64
	for n < size {
		st.mu.Lock()
		st.takeRing(g, n)
		if g.ring != nil {
			k, inRing, err := st.ringChunkIn(path, m, g, r, n, min(ringChunk, size-n), lw)
			if inRing || err != nil {
				n += int64(k)
				g.written = n
				st.cond.Broadcast()
				st.mu.Unlock()
				if err != nil {
					return copyError(path, m, n, err, lw)
				}
				continue
			}
		}
		// Hold back while the caller reads this member and is busy, far
		// behind (never while a caller waits: it may wait for this data
		// or for another member).
		for st.holdBack(g) {
			st.cond.Wait()
		}
		drop := g.closed
		keep := []byteRange{{0, size}}
		wasRetaining := g.retaining
		if g.retaining {
			keep = g.retain
		}
		st.mu.Unlock()
		chunk := buf[:min(int64(len(buf)), size-n)]
		k, err := io.ReadFull(r, chunk)
		if st.onPages != nil && k > 0 {
			st.onPages(g.name, n, chunk[:k])
		}
		if k > 0 && !drop {
			for _, w := range overlaps(keep, n, n+int64(k)) {
				if _, werr := f.WriteAt(chunk[w.off-n:w.end-n], w.off); werr != nil {
					return memberError(path, m.hdr.Name, "%v", werr)
				}
				lw.n += w.end - w.off
			}
		}
		n += int64(k)
		if err != nil {
			return copyError(path, m, n, err, lw)
		}
		st.mu.Lock()
		if g.retaining && !wasRetaining && k > 0 && !drop {
			// Retain (or DropPages) came while this chunk was written
			// whole: free what it does not keep, as Retain freed the rest.
			punchOutside(f, g.retain, n-int64(k), n)
		}
		g.written = n
		st.cond.Broadcast()
		st.mu.Unlock()
	}
	st.mu.Lock()
	if g.closed {
		punch(f, 0, size) // what was written while it was being dropped
	}
	g.complete = true
	if !g.opened && !g.retaining && size > streamAhead {
		st.notes = append(st.notes, fmt.Sprintf("%s: spooled whole (%d bytes, in an anonymous file): nobody read it while it streamed (the images describing it come later in the archive, or its process is read later)", m.hdr.Name, size))
	}
	st.cond.Broadcast()
	st.mu.Unlock()
	return nil
}

// holdBack reports whether the reader should wait before it writes more
// of g: a caller reads a consumed pages member and is busy (no caller
// waits for data: one may wait for this data or another member's), and
// what the stream holds of pages not yet read is more than streamAhead.
func (st *stream) holdBack(g *growing) bool {
	if st.waiting > 0 || g.closed {
		return false
	}
	reading := false
	var held int64
	for _, h := range st.grow {
		if h.closed {
			continue
		}
		if h.opens > 0 && st.consume[h.name] {
			reading = true
		}
		held += h.written - max(h.readEnd, h.punched)
	}
	return reading && held > streamAhead
}

// streamSource is the Source of a stream's images (prefix checkpoint/) or
// top-level files.
type streamSource struct {
	st     *stream
	prefix string
}

func (s *streamSource) String() string {
	if s.prefix == "" {
		return s.st.path
	}
	return s.st.path + ":" + s.prefix[:len(s.prefix)-1]
}

// Names waits for the end of the stream.
func (s *streamSource) Names() ([]string, error) {
	st := s.st
	st.mu.Lock()
	st.waiting++
	for !st.done {
		st.cond.Wait()
	}
	st.waiting--
	err := st.err
	st.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out, _ := (&anonSource{path: st.path, prefix: s.prefix, b: st.b}).Names()
	if s.prefix != "" {
		for k := range st.grow {
			out = append(out, k)
		}
	}
	return sortedUnique(out), nil
}

func sortedUnique(s []string) []string {
	m := map[string]struct{}{}
	for _, x := range s {
		m[x] = struct{}{}
	}
	return names(m)
}

// Open waits until member name has been read (a pages member: until it
// starts streaming), or the stream has ended without it.
func (s *streamSource) Open(name string) (criuimg.File, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	counted := false
	defer func() {
		if counted {
			st.waiting--
		}
	}()
	for {
		if s.prefix != "" && validMemberKey(name) {
			if g, ok := st.grow[name]; ok {
				g.opens++
				g.opened = true
				return &growingFile{st: st, g: g}, nil
			}
		}
		if _, ok := st.b.members[s.prefix+name]; ok {
			return (&anonSource{path: st.path, prefix: s.prefix, b: st.b}).Open(name)
		}
		if st.done {
			if st.err != nil {
				return nil, st.err
			}
			return nil, &fs.PathError{Op: "open", Path: st.path + ": " + s.prefix + name, Err: fs.ErrNotExist}
		}
		if !counted {
			counted = true
			st.waiting++
			st.cond.Broadcast()
		}
		st.cond.Wait()
	}
}

func (s *streamSource) modTime(name string) (time.Time, error) {
	f, err := s.Open(name)
	if err != nil {
		return time.Time{}, err
	}
	f.Close()
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if g, ok := st.grow[name]; ok && s.prefix != "" {
		return g.mtime, nil
	}
	return (&anonSource{path: st.path, prefix: s.prefix, b: st.b}).modTime(name)
}

// growingFile reads a pages member while it streams.
type growingFile struct {
	st     *stream
	g      *growing
	closed bool
}

func (f *growingFile) Name() string { return f.g.name }
func (f *growingFile) Size() int64  { return f.g.size }

// await waits, under st.mu, until the stream has written [off, end) of
// the file (within its size), and says why it cannot.
func (f *growingFile) await(off, end int64) error {
	st, g := f.st, f.g
	if off < g.punched {
		return fmt.Errorf("%s: offset %d: %w", g.name, off, errStreamed)
	}
	if g.retaining && !covered(g.retain, off, end) {
		return fmt.Errorf("%s: [%d, %d): %w", g.name, off, end, errNotRetained)
	}
	g.reqOff = max(g.reqOff, off)
	counted := false
	w := byteRange{off, end}
	for g.written < end && !g.complete && !st.done {
		if !counted {
			counted = true
			st.waiting++
			g.waits = append(g.waits, w)
			st.cond.Broadcast()
		}
		st.cond.Wait()
	}
	if counted {
		st.waiting--
		if i := slices.Index(g.waits, w); i >= 0 {
			g.waits = slices.Delete(g.waits, i, i+1)
		}
	}
	if g.written < end {
		err := st.err
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%s: the archive stream ended: %w", g.name, err)
	}
	return nil
}

// View lends [off, off+n) from the ring while the member streams through
// it (criuimg.Viewer): the stream writes over the ring only streamBack
// bytes behind the furthest read, and a view is at most MaxView long, so
// it stays valid for ViewSlack bytes of further reads; a ring given up
// while lent (spilled) is never reused.
func (f *growingFile) View(off int64, n int) ([]byte, error) {
	st, g := f.st, f.g
	end := off + int64(n)
	if off < 0 || n <= 0 || n > criuimg.MaxView || end > g.size {
		return nil, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if g.ring == nil || off < g.ringLo || g.retaining {
		return nil, nil
	}
	if err := f.await(off, end); err != nil {
		return nil, err
	}
	if g.ring == nil || off < g.ringLo || off < g.ringBase {
		return nil, nil
	}
	i := g.ringPos(off)
	if i+n > len(g.ring) {
		return nil, nil // it wraps around
	}
	g.lent = true
	st.advance(g, end)
	return g.ring[i : i+n : i+n], nil
}

func (f *growingFile) ReadAt(p []byte, off int64) (int, error) {
	st, g := f.st, f.g
	if off < 0 {
		return 0, fmt.Errorf("%s: %w", g.name, readat.ErrNegativeOffset)
	}
	if off >= g.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), g.size)
	st.mu.Lock()
	if err := f.await(off, end); err != nil {
		st.mu.Unlock()
		return 0, err
	}
	var n int
	var err error
	if g.ring != nil && end > g.ringBase {
		// The ring's part under the lock (the stream reuses what lies
		// below ringLo), the file's part (before ringBase) after.
		at := max(off, g.ringBase)
		if at < g.ringLo {
			st.mu.Unlock()
			return 0, fmt.Errorf("%s: offset %d: %w", g.name, at, errStreamed)
		}
		g.ringCopy(p[at-off:end-off], at)
		st.mu.Unlock()
		n = int(end - at)
		if off < at {
			var k int
			k, err = readat.Window(g.f, g.name, 0, at, p[:at-off], off)
			if err != nil {
				n = k
			} else {
				n += k
			}
		}
		if err == nil && end-off < int64(len(p)) {
			err = io.EOF
		}
	} else {
		st.mu.Unlock()
		n, err = readat.Window(g.f, g.name, 0, g.size, p, off)
	}
	st.mu.Lock()
	st.advance(g, end)
	st.mu.Unlock()
	return n, err
}

// advance records that g has been read up to end (under st.mu): a
// consumed member is freed up to streamBack behind, and the stream may go
// on.
func (st *stream) advance(g *growing, end int64) {
	if end > g.readEnd {
		g.readEnd = end
	}
	if st.consume[g.name] {
		to := (g.readEnd - streamBack) &^ (1<<20 - 1)
		if g.ring != nil && to > g.punched {
			// The file holds nothing after ringBase: one punch.
			if g.punched < g.ringBase {
				punch(g.f, g.punched, min(to, g.ringBase)-g.punched)
			}
			g.punched = to
		} else if to-g.punched >= punchStep {
			if unix.Fallocate(int(g.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, g.punched, to-g.punched) == nil {
				g.punched = to
			}
		}
	}
	st.cond.Broadcast()
}

// Close ends this reader's use; the last Close of a consumed member frees
// it and drops the rest of its stream.
func (f *growingFile) Close() error {
	st, g := f.st, f.g
	st.mu.Lock()
	defer st.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	g.opens--
	if g.opens == 0 && st.consume[g.name] {
		st.finish(g)
	}
	st.cond.Broadcast()
	return nil
}

// finish frees consumed member g and drops the rest of its stream (under
// st.mu).
func (st *stream) finish(g *growing) {
	if g.closed {
		return
	}
	g.closed = true
	st.dropRing(g)
	g.punched = g.size
	punch(g.f, 0, g.size)
}

// Done tells a streamed checkpoint that the reader of the consumed pages
// image name (see Consume) is done with it, though it may still hold it
// open: it is freed, the rest of its stream is dropped, and reading it
// fails from now on. Without Options.Stream, or for a member not consumed
// or not yet streaming, it does nothing.
func (c *Checkpoint) Done(name string) {
	st := c.stream
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if g, ok := st.grow[name]; ok && st.consume[name] {
		st.finish(g)
		st.cond.Broadcast()
	}
}

// Consume marks the pages image name (e.g. "pages-1.img") of a streamed
// checkpoint as read once, in order, by one reader: what it has read is
// freed as it goes, and what it has not read when it closes the file is
// dropped. Without Options.Stream it does nothing.
func (c *Checkpoint) Consume(name string) {
	if c.stream == nil {
		return
	}
	c.stream.mu.Lock()
	c.stream.consume[name] = true
	c.stream.mu.Unlock()
}

// Retain tells a streamed checkpoint to keep, of the pages image name,
// only the byte ranges given (in calls so far: they add up); the rest is
// dropped as it streams (what was written before is freed), and reading
// it fails. A caller that needs a few pages of a large file (inspect: the
// argument areas and the code at each thread's PC) calls it before, or as
// soon as, the member starts streaming. Without Options.Stream it does
// nothing.
func (c *Checkpoint) Retain(name string, ranges [][2]int64) {
	st := c.stream
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	rs := st.retain[name]
	for _, r := range ranges {
		if r[0] < r[1] {
			rs = append(rs, byteRange{r[0], r[1]})
		}
	}
	st.retain[name] = rs
	g, ok := st.grow[name]
	if !ok {
		return
	}
	g.retain = rs
	if !g.retaining {
		// Free what was written outside the ranges.
		g.retaining = true
		punchOutside(g.f, rs, 0, g.size)
	}
	st.cond.Broadcast()
}

// DropPages tells a streamed checkpoint that no byte of its pages files
// will be read: each is dropped as it streams (as Retain with no range),
// and reading one fails. A caller that needs only the metadata or the
// rw layer (cat) calls it before the pages stream. Without Options.Stream
// it does nothing.
func (c *Checkpoint) DropPages() {
	st := c.stream
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.dropAll = true
	for _, g := range st.grow {
		if !g.retaining { // (a member retaining nothing yet: no range told)
			g.retain, g.retaining = nil, true
			punch(g.f, 0, g.size)
		}
	}
	st.cond.Broadcast()
}

func sortedRanges(rs []byteRange) []byteRange {
	out := append([]byteRange(nil), rs...)
	slices.SortFunc(out, func(a, b byteRange) int { return cmp.Compare(a.off, b.off) })
	return out
}

// punchOutside frees the bytes of [from, to) of f that no range of rs
// holds.
func punchOutside(f *os.File, rs []byteRange, from, to int64) {
	at := from
	for _, r := range sortedRanges(overlaps(rs, from, to)) {
		if r.off > at {
			punch(f, at, r.off-at)
		}
		at = max(at, r.end)
	}
	if at < to {
		punch(f, at, to-at)
	}
}

func punch(f *os.File, off, n int64) {
	unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

// Ahead waits, for a streamed checkpoint, until the stream reaches its
// first pages-*.img member (or ends), and returns the names of the images
// read before it, however far the stream has gone since (if none were,
// those read by the time of the call), sorted: what a caller may use
// before the pages stream.
// For another checkpoint it returns every image name.
func (c *Checkpoint) Ahead() ([]string, error) {
	st := c.stream
	if st == nil {
		return c.Images.Names()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.waiting++
	for !st.pagesStart {
		st.cond.Wait()
	}
	st.waiting--
	if st.ahead != nil {
		return slices.Clone(st.ahead), nil
	}
	if st.done && st.err != nil {
		return nil, st.err
	}
	out, _ := (&anonSource{path: st.path, prefix: "checkpoint/", b: st.b}).Names()
	return out, nil
}

// Wait waits for the end of a streamed checkpoint's stream and returns its
// error (nil at once for another checkpoint): a truncated or damaged
// archive, found after the pages the caller used.
func (c *Checkpoint) Wait() error {
	st := c.stream
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.waiting++
	for !st.done {
		st.cond.Wait()
	}
	st.waiting--
	return st.err
}

// Notes returns what a streamed checkpoint had to do otherwise than
// stream: pages files spooled whole, each named with the reason.
func (c *Checkpoint) Notes() []string {
	if c.stream == nil {
		return nil
	}
	c.stream.mu.Lock()
	defer c.stream.mu.Unlock()
	return append([]string(nil), c.stream.notes...)
}
