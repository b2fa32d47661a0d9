package criuimg

// Fuzz targets for the image reader: the framing, each decoder path (every
// image a conversion reads, replaced by fuzzed bytes in an otherwise real
// checkpoint), the page index and the memory view. Seeds come from the
// real fixtures under testdata/. Run one with
//
//	go test -run '^$' -fuzz '^FuzzPagemap$' -fuzztime 60s ./criuimg
//
// or all of them with `make fuzz`.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"google.golang.org/protobuf/proto"
)

// memSource is a Source over files held in memory.
type memSource struct {
	files map[string][]byte
	sizes map[string]int64 // files of this size whose bytes are a pattern (no memory)
}

func (s *memSource) Open(name string) (File, error) {
	if b, ok := s.files[name]; ok {
		return &memFile{r: bytes.NewReader(b), name: name, size: int64(len(b))}, nil
	}
	if n, ok := s.sizes[name]; ok {
		return &memFile{r: patternReader{}, name: name, size: n}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (s *memSource) Names() ([]string, error) {
	var names []string
	for n := range s.files {
		names = append(names, n)
	}
	for n := range s.sizes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (s *memSource) String() string { return "mem" }

// with returns a copy of s in which name holds data (nil data: removed).
func (s *memSource) with(name string, data []byte) *memSource {
	c := &memSource{files: make(map[string][]byte, len(s.files)), sizes: s.sizes}
	for k, v := range s.files {
		c.files[k] = v
	}
	if data == nil {
		delete(c.files, name)
	} else {
		c.files[name] = data
	}
	return c
}

type memFile struct {
	r    io.ReaderAt
	name string
	size int64
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= f.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	if int64(len(p)) > f.size-off {
		n, _ := f.r.ReadAt(p[:f.size-off], off)
		return n, io.EOF
	}
	return f.r.ReadAt(p, off)
}
func (f *memFile) Close() error { return nil }
func (f *memFile) Name() string { return f.name }
func (f *memFile) Size() int64  { return f.size }

// patternReader reads patternByte(off) at every offset.
type patternReader struct{}

func (patternReader) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		p[i] = patternByte(off + int64(i))
	}
	return len(p), nil
}

func patternByte(off int64) byte {
	u := uint64(off)
	return byte(u ^ u>>8 ^ u>>16 ^ u>>24 ^ u>>32)
}

// Fixtures whose images seed the fuzz targets: small ones, with every kind
// of image (static-c has a shmem pagemap and memfd.img; threads-c-criu411
// the old pagemap format; arm64 another architecture).
var fuzzFixtures = []string{
	"x86_64/static-c",
	"x86_64/threads-c",
	"x86_64/threads-c-criu411",
	"arm64/threads-c",
}

var (
	fixtureOnce sync.Once
	fixtureSrcs []*memSource
	fixtureErr  error
)

// loadFixtures reads the fixtures' images into memory (the big files only
// as their sizes).
func loadFixtures(tb testing.TB) []*memSource {
	fixtureOnce.Do(func() {
		for _, fx := range fuzzFixtures {
			dir := filepath.Join("..", "testdata", fx, "images")
			ents, err := os.ReadDir(dir)
			if err != nil {
				fixtureErr = err
				return
			}
			s := &memSource{files: map[string][]byte{}, sizes: map[string]int64{}}
			for _, e := range ents {
				if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".img") {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					fixtureErr = err
					return
				}
				s.files[e.Name()] = b
			}
			fixtureSrcs = append(fixtureSrcs, s)
		}
	})
	if fixtureErr != nil {
		tb.Skipf("fixtures: %v", fixtureErr)
	}
	return fixtureSrcs
}

// imagesLike lists the images of s whose names match the prefix, sorted.
func imagesLike(s *memSource, prefix string) []string {
	var names []string
	for n := range s.files {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// exercise runs everything a conversion reads over src and checks the
// invariants the rest of the program relies on.
func exercise(t *testing.T, src Source) {
	c, err := Open(src)
	if err != nil {
		checkErr(t, err)
		return
	}
	for _, pid := range c.Pids() {
		p, err := c.LoadProcess(pid)
		if err != nil {
			checkErr(t, err)
			if p != nil {
				p.Close()
			}
			continue
		}
		checkProcess(t, p)
		p.Close()
	}
}

// checkErr checks that an error message is not empty.
func checkErr(t *testing.T, err error) {
	if err.Error() == "" {
		t.Fatalf("empty error %#v", err)
	}
}

// checkProcess checks a loaded process: sorted, aligned VMAs; extents that
// tile each VMA; captured extents inside their pages file; ReadAt agreeing
// with the extents.
func checkProcess(t *testing.T, p *Process) {
	if len(p.Threads) == 0 || p.Threads[0].Tid != p.Pid {
		t.Fatalf("pid %d: threads %v", p.Pid, p.Threads)
	}
	ps := p.PageSize
	if ps == 0 || ps&(ps-1) != 0 {
		t.Fatalf("page size %d", ps)
	}
	budget := 1 << 20 // bytes read through ReadAt per process
	for i := range p.VMAs {
		v := &p.VMAs[i]
		if v.Start >= v.End || v.Start%ps != 0 || v.End%ps != 0 || (i > 0 && v.Start < p.VMAs[i-1].End) {
			t.Fatalf("bad vma %d [%#x-%#x)", i, v.Start, v.End)
		}
		cur := v.Start
		err := p.Mem.VMAExtents(v, func(e Extent) error {
			if e.Start != cur || e.End <= e.Start || e.End > v.End {
				return fmt.Errorf("extent [%#x-%#x) %v after %#x in vma [%#x-%#x)", e.Start, e.End, e.Kind, cur, v.Start, v.End)
			}
			if e.Kind == Captured {
				if e.Src == nil || e.Off < 0 || uint64(e.Off) > uint64(e.Src.Size()) || e.End-e.Start > uint64(e.Src.Size())-uint64(e.Off) {
					return fmt.Errorf("captured extent [%#x-%#x) at offset %d outside its pages file", e.Start, e.End, e.Off)
				}
			}
			if budget > 0 && e.Kind != Absent && e.Start <= math.MaxInt64-4096 { // ReadAt takes an int64 address
				n := min(e.End-e.Start, 4096)
				b := make([]byte, n)
				k, err := p.Mem.ReadAt(b, int64(e.Start))
				if err != nil || uint64(k) != n {
					return fmt.Errorf("ReadAt(%#x, %d) of a %v extent: %d, %v", e.Start, n, e.Kind, k, err)
				}
				budget -= int(n)
			}
			cur = e.End
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if cur != v.End {
			t.Fatalf("extents of vma [%#x-%#x) end at %#x", v.Start, v.End, cur)
		}
	}
	// Reads straddling the ends of the address space must not panic.
	var b [16]byte
	p.Mem.ReadAt(b[:], math.MaxInt64-8)
	p.Mem.ReadAt(b[:], -1)
}

// FuzzReader fuzzes the framing: NewReader and Next over arbitrary bytes.
func FuzzReader(f *testing.F) {
	for _, s := range loadFixtures(f) {
		for name, b := range s.files {
			if len(b) <= 4096 {
				f.Add(b, name == "inventory.img")
			}
		}
	}
	f.Add([]byte{}, false)
	f.Add(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint64(nil, uint64(MagicImgCommon)|uint64(MagicPstree)<<32), math.MaxUint32), false)
	f.Fuzz(func(t *testing.T, data []byte, inventory bool) {
		magic := MagicPstree
		if inventory {
			magic = MagicInventory
		} else if len(data) >= 8 {
			magic = binary.LittleEndian.Uint32(data[4:]) // let every image's magic through
		}
		file := &memFile{r: bytes.NewReader(data), name: "x.img", size: int64(len(data))}
		r, err := NewReader(file, magic)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.File != "x.img" {
				t.Fatalf("NewReader: %v is not a FormatError naming the file", err)
			}
			return
		}
		for i := 0; ; i++ {
			off := r.Offset()
			m := &pstree.PstreeEntry{}
			err := r.Next(m)
			if err == io.EOF {
				if off != int64(len(data)) {
					t.Fatalf("EOF at offset %d of %d", off, len(data))
				}
				return
			}
			if err != nil {
				var fe *FormatError
				if !errors.As(err, &fe) || fe.File != "x.img" || fe.Entry != i || fe.Offset != off || !errors.Is(err, ErrFormat) {
					t.Fatalf("entry %d at %d: %v is not a FormatError naming file, entry and offset", i, off, err)
				}
				return
			}
			if r.Offset() <= off || r.Offset() > int64(len(data)) || r.Entry() != i+1 {
				t.Fatalf("entry %d: offset %d -> %d, entry %d", i, off, r.Offset(), r.Entry())
			}
		}
	})
}

// fuzzImage seeds f with the images of every fixture whose names start
// with prefix and fuzzes them in place: fixture fix, image which of those
// is replaced by data and the whole checkpoint is read.
func fuzzImage(f *testing.F, prefix string) {
	srcs := loadFixtures(f)
	for fi, s := range srcs {
		for wi, name := range imagesLike(s, prefix) {
			f.Add(uint8(fi), uint8(wi), s.files[name])
		}
	}
	f.Fuzz(func(t *testing.T, fix, which uint8, data []byte) {
		s := srcs[int(fix)%len(srcs)]
		names := imagesLike(s, prefix)
		if len(names) == 0 {
			return
		}
		exercise(t, s.with(names[int(which)%len(names)], data))
	})
}

func FuzzInventory(f *testing.F) { fuzzImage(f, "inventory.img") }
func FuzzPstree(f *testing.F)    { fuzzImage(f, "pstree.img") }
func FuzzFiles(f *testing.F)     { fuzzImage(f, "files.img") }
func FuzzCore(f *testing.F)      { fuzzImage(f, "core-") }
func FuzzMM(f *testing.F)        { fuzzImage(f, "mm-") }
func FuzzPagemap(f *testing.F)   { fuzzImage(f, "pagemap-") }

// FuzzPageIndex fuzzes ReadPageIndex over a pages file of any size and any
// page size, and checks the index it returns and Find.
func FuzzPageIndex(f *testing.F) {
	for _, s := range loadFixtures(f) {
		for _, name := range imagesLike(s, "pagemap-") {
			f.Add(s.files[name], uint64(1<<20), uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, pagesSize uint64, shift uint8) {
		pageSize := uint64(4096) << (shift % 9)
		src := &memSource{files: map[string][]byte{"pagemap-1.img": data}, sizes: map[string]int64{}}
		for id := 0; id < 8; id++ {
			src.sizes[fmt.Sprintf("pages-%d.img", id)] = int64(pagesSize & math.MaxInt64)
		}
		idx, err := ReadPageIndex(src, "pagemap-1.img", pageSize)
		if err != nil {
			checkErr(t, err)
			return
		}
		defer idx.Close()
		var fileOff int64
		for i, r := range idx.Runs {
			if r.Len == 0 || r.Addr%pageSize != 0 || r.Len%pageSize != 0 || r.Addr+r.Len < r.Addr {
				t.Fatalf("run %d: %+v", i, r)
			}
			if i > 0 && r.Addr < idx.Runs[i-1].Addr+idx.Runs[i-1].Len {
				t.Fatalf("run %d overlaps", i)
			}
			if r.InFile() {
				if r.Offset != fileOff || uint64(r.Offset)+r.Len > uint64(idx.Pages.Size()) {
					t.Fatalf("run %d: offset %d, want %d (pages %d)", i, r.Offset, fileOff, idx.Pages.Size())
				}
				fileOff += int64(r.Len)
			}
		}
		for _, r := range idx.Runs {
			for _, a := range []uint64{r.Addr, r.Addr + r.Len - 1, r.Addr + r.Len, r.Addr - 1} {
				j := idx.Find(a)
				want := sort.Search(len(idx.Runs), func(i int) bool { return idx.Runs[i].Addr+idx.Runs[i].Len > a })
				if j != want {
					t.Fatalf("Find(%#x) = %d, want %d", a, j, want)
				}
			}
		}
	})
}

// FuzzMemory fuzzes the memory view with synthetic mappings and pagemaps
// loaded through the real checkpoint reader (static-c's pid 1535 with its
// mm and pagemaps replaced), and compares ReadAt over every mapping with a
// byte-by-byte model.
//
// vmaSpec: 6 bytes a mapping (gap pages, pages, kind, pgoff pages, pgoff
// high byte, prot); privSpec and shmSpec: 3 bytes a pagemap entry (gap
// pages, pages, flags).
func FuzzMemory(f *testing.F) {
	srcs := loadFixtures(f)
	base := srcs[0] // static-c
	f.Add([]byte{0, 4, 0, 0, 0, 3, 1, 2, 1, 0, 0, 1, 0, 4, 2, 1, 0, 3, 0, 1, 3, 0, 0, 0}, []byte{0, 1, 4, 1, 2, 6, 1, 1, 1, 3, 2, 4}, []byte{0, 1, 4, 1, 1, 4})
	f.Add([]byte{2, 8, 2, 0, 0, 3, 0, 2, 2, 2, 0, 1}, []byte{0, 2, 4}, []byte{0, 3, 4, 0, 1, 1})
	f.Add([]byte{0, 2, 2, 0, 0xff, 3}, []byte{}, []byte{0, 1, 4})
	f.Fuzz(func(t *testing.T, vmaSpec, privSpec, shmSpec []byte) {
		const ps = 4096
		const pid = 1535
		if len(vmaSpec) > 6*32 || len(privSpec) > 3*64 || len(shmSpec) > 3*64 {
			return
		}
		orig := &mm.MmEntry{}
		if err := (proto.UnmarshalOptions{}).Unmarshal(entryPayload(base.files["mm-1535.img"], 0), orig); err != nil {
			t.Fatal(err)
		}
		m := &mm.MmEntry{MmStartCode: orig.MmStartCode, MmEndCode: orig.MmEndCode, MmStartData: orig.MmStartData, MmEndData: orig.MmEndData,
			MmStartStack: orig.MmStartStack, MmStartBrk: orig.MmStartBrk, MmBrk: orig.MmBrk, MmArgStart: proto.Uint64(0), MmArgEnd: proto.Uint64(0),
			MmEnvStart: orig.MmEnvStart, MmEnvEnd: orig.MmEnvEnd, ExeFileId: orig.ExeFileId, MmSavedAuxv: orig.MmSavedAuxv}
		addr := uint64(0x1000)
		pages := 0
		for b := vmaSpec; len(b) >= 6; b = b[6:] {
			addr += uint64(b[0]%4) * ps
			n := uint64(b[1]%8 + 1)
			pages += int(n)
			v := &vma.VmaEntry{Start: proto.Uint64(addr), End: proto.Uint64(addr + n*ps), Prot: proto.Uint32(uint32(b[5] % 8)),
				Flags: proto.Uint32(0x22), Shmid: proto.Uint64(0), Fd: proto.Int64(-1)}
			pgoff := uint64(b[3]) * ps
			switch b[4] {
			case 0:
			case 0xff: // offsets that overflow at the end of the mapping
				pgoff = math.MaxUint64&^(ps-1) - pgoff
			default:
				pgoff |= uint64(b[4]) << 56 // out of range offsets too
			}
			v.Pgoff = proto.Uint64(pgoff)
			switch b[2] % 4 {
			case 0:
				v.Status = proto.Uint32(VMAAreaRegular | VMAAnonPrivate)
			case 1:
				v.Status = proto.Uint32(VMAAreaRegular | VMAFilePrivate)
				v.Flags = proto.Uint32(0x2)
				v.Shmid = proto.Uint64(uint64(orig.GetExeFileId()))
			case 2:
				v.Status = proto.Uint32(VMAAreaRegular | VMAAnonShared)
				v.Flags = proto.Uint32(0x21)
				v.Shmid = proto.Uint64(1972)
			case 3:
				v.Status = proto.Uint32(VMAAreaRegular | VMAAreaVVAR)
			}
			m.Vmas = append(m.Vmas, v)
			addr += n * ps
		}
		if pages > 64 {
			return
		}
		mmImg := frame(MagicMM, m)
		priv, privSize := pagemapImage(2, privSpec, 0x1000)
		shm, shmSize := pagemapImage(3, shmSpec, 0)
		src := base.with("mm-1535.img", mmImg).with("pagemap-1535.img", priv).with("pagemap-shmem-1972.img", shm)
		src.sizes = map[string]int64{"pages-2.img": privSize, "pages-3.img": shmSize}
		delete(src.files, "pages-2.img")
		delete(src.files, "pages-3.img")
		c, err := Open(src)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.LoadProcess(pid)
		if err != nil {
			checkErr(t, err)
			return
		}
		defer p.Close()
		checkProcess(t, p)
		for i := range p.VMAs {
			v := &p.VMAs[i]
			got := make([]byte, v.End-v.Start)
			n, err := p.Mem.ReadAt(got, int64(v.Start))
			want, ok := modelRead(p, v)
			if n != len(want) || (n < len(got)) != (err != nil) {
				t.Fatalf("vma %d [%#x-%#x) %+v: ReadAt = %d, %v; model reads %d (%v)", i, v.Start, v.End, *v, n, err, len(want), ok)
			}
			if !bytes.Equal(got[:n], want) {
				t.Fatalf("vma %d [%#x-%#x): ReadAt bytes differ from the model", i, v.Start, v.End)
			}
		}
	})
}

// modelRead reads v byte by byte from the page indexes, as the pagemaps
// say: the bytes up to the first one that is not readable.
func modelRead(p *Process, v *VMA) ([]byte, bool) {
	var out []byte
	for a := v.Start; a < v.End; a++ {
		if v.Special() {
			return out, false
		}
		idx, key, gapReadable := p.Mem.private, a, v.Anon()
		if v.HasShmem {
			idx, key, gapReadable = p.Mem.shmem[v.Shmem], a-v.Start+v.Pgoff, true
			if v.Pgoff > math.MaxUint64-(v.End-v.Start) {
				return out, false
			}
		}
		found := false
		for _, r := range idx.Runs {
			if key >= r.Addr && key-r.Addr < r.Len {
				found = true
				if !r.InFile() {
					return out, false
				}
				var b [1]byte
				idx.Pages.ReadAt(b[:], r.Offset+int64(key-r.Addr))
				out = append(out, b[0])
				break
			}
		}
		if !found {
			if !gapReadable {
				return out, false
			}
			out = append(out, 0)
		}
	}
	return out, true
}

// pagemapImage builds a pagemap image of pages file id from spec (3 bytes
// an entry: gap pages, pages, flags) starting at base; it returns the image
// and the size of the pages file.
func pagemapImage(id uint32, spec []byte, base uint64) ([]byte, int64) {
	const ps = 4096
	msgs := []proto.Message{&pagemap.PagemapHead{PagesId: proto.Uint32(id)}}
	addr := base
	var size int64
	for b := spec; len(b) >= 3; b = b[3:] {
		addr += uint64(b[0]%4) * ps
		n := uint64(b[1]%8 + 1)
		flags := []uint32{PEPresent, PEPresent | PELazy, PEParent, PELazy}[b[2]%4]
		msgs = append(msgs, &pagemap.PagemapEntry{Vaddr: proto.Uint64(addr), CompatNrPages: proto.Uint32(0), NrPages: proto.Uint64(n), Flags: proto.Uint32(flags)})
		if flags&PEPresent != 0 {
			size += int64(n * ps)
		}
		addr += n * ps
	}
	return frame(MagicPagemap, msgs...), size
}

// frame encodes an image: the magics, then one entry per message.
func frame(magic uint32, msgs ...proto.Message) []byte {
	b := binary.LittleEndian.AppendUint32(nil, MagicImgCommon)
	b = binary.LittleEndian.AppendUint32(b, magic)
	for _, m := range msgs {
		p, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
		if err != nil {
			panic(err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// entryPayload returns the payload of entry i of an image (8-byte header).
func entryPayload(img []byte, i int) []byte {
	b := img[8:]
	for ; ; i-- {
		n := binary.LittleEndian.Uint32(b)
		if i == 0 {
			return b[4 : 4+n]
		}
		b = b[4+n:]
	}
}
