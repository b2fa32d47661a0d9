// Command trimcheckpoint makes the small testdata of testdata/x86_64/servers
// from a raw checkpoint of scripts/servers/run.sh: it copies every image but
// the page data, and rewrites each pagemap and its pages file keeping only
// the captured pages of executable mappings (JIT code caches included), of
// the stack (argv and environment live there), of mappings whose captured
// pages are small, and the first pages of each shared memory object. The
// result loads in criuimg's strict mode; dropped pages are absent from the
// pagemap (they read as never captured). It writes manifest.json from what
// run.sh saved of /proc before the dump (info/).
//
//	trimcheckpoint -in /tmp/raw/jvm -out testdata/x86_64/servers/jvm -jit 'HotSpot code cache'
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

func main() {
	in := flag.String("in", "", "raw server directory of run.sh (images/ and info/)")
	out := flag.String("out", "", "testdata directory to write (images/, info/, manifest.json)")
	small := flag.Uint64("small", 64<<10, "keep every captured page of a mapping with at most this many captured bytes")
	shmemKeep := flag.Uint64("shmem", 64<<10, "keep at most this many captured bytes of each shared memory object")
	jit := flag.String("jit", "", "what the anonymous executable mappings are (the runtime's JIT code cache), if any")
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	t := trimmer{small: *small, shmem: *shmemKeep}
	if err := t.run(*in, *out, *jit); err != nil {
		fmt.Fprintf(os.Stderr, "trimcheckpoint: %v\n", err)
		os.Exit(1)
	}
}

type trimmer struct {
	small, shmem uint64
	trims        []Trim
}

// Trim says what one pagemap lost.
type Trim struct {
	Pagemap      string   `json:"pagemap"`
	KeptBytes    uint64   `json:"kept_bytes"`
	DroppedBytes uint64   `json:"dropped_bytes"`
	Dropped      []string `json:"dropped_mappings,omitempty"` // start-end perms path of each mapping whose pages went
}

// Oracle is a kernel core of one process, made from the state CRIU left
// stopped by a core-dumping signal the process does not catch.
type Oracle struct {
	Pid    uint32 `json:"pid"`
	File   string `json:"file"`
	Signal string `json:"signal"`
}

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	Start string `json:"start"`
	End   string `json:"end"`
	Perms string `json:"perms"`
	Path  string `json:"path"`
}

// Proc is one process of the manifest.
type Proc struct {
	Pid     uint32   `json:"pid"`
	Cmdline []string `json:"cmdline"`
	Exe     string   `json:"exe"`
	Comm    string   `json:"comm"`
	Threads int      `json:"threads"`
	// AnonExec lists the anonymous executable mappings of /proc/PID/maps
	// (the vDSO and vsyscall pages left out).
	AnonExec []Mapping `json:"anon_exec_mappings"`
	// SysV lists the SysV shared memory attachments of /proc/PID/maps
	// (path /SYSV<key>), if any.
	SysV []Mapping `json:"sysv_shm_mappings,omitempty"`
	Maps string    `json:"maps"` // the info/ file of /proc/PID/maps
}

// Manifest is manifest.json.
type Manifest struct {
	Program string            `json:"program"`
	Version string            `json:"version"`
	Env     map[string]string `json:"environment"`
	RootPid uint32            `json:"root_pid"`
	Procs   []Proc            `json:"processes"`
	// JIT says what the anonymous executable mappings are, when they are
	// a JIT's code cache.
	JIT string `json:"jit_code_cache,omitempty"`
	// IpcsM is what `ipcs -m` showed in the processes' IPC namespace
	// (info/ipcs-m.txt), when they had one of their own.
	IpcsM []string `json:"ipcs_m,omitempty"`
	// Oracles lists the kernel's cores of frozen processes (core.<pid>.gz,
	// copied as they are).
	Oracles []Oracle `json:"oracles,omitempty"`
	Trimmed string   `json:"trimmed"`
	Trims   []Trim   `json:"trims"`
}

func (t *trimmer) run(in, out, jit string) error {
	rawDir := filepath.Join(in, "images")
	imgDir := filepath.Join(out, "images")
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return err
	}
	src, err := criuimg.NewDirSource(rawDir)
	if err != nil {
		return err
	}
	ck, err := criuimg.Open(src)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(rawDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "pagemap-") || strings.HasPrefix(n, "pages-") {
			continue
		}
		if err := copyFile(filepath.Join(imgDir, n), filepath.Join(rawDir, n)); err != nil {
			return err
		}
	}
	var pageSize uint64
	for _, pid := range ck.Pids() {
		p, err := ck.LoadProcess(pid)
		if err != nil {
			return err
		}
		pageSize = p.PageSize
		err = t.private(rawDir, imgDir, p)
		p.Close()
		if err != nil {
			return err
		}
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "pagemap-shmem-") {
			if err := t.shmemObject(src, rawDir, imgDir, n, pageSize); err != nil {
				return err
			}
		}
	}
	m, err := manifest(in, out)
	if err != nil {
		return err
	}
	m.JIT = jit
	if err := oracles(in, out, m); err != nil {
		return err
	}
	m.Trims = t.trims
	m.Trimmed = fmt.Sprintf("pagemap-*.img and pages-*.img rewritten by scripts/trimcheckpoint: kept the captured pages of executable mappings, "+
		"of the stack, and of mappings with at most %d captured bytes; of each shared memory object the first %d captured bytes; "+
		"the other pages are left out of the pagemaps (stats-dump still counts them)", t.small, t.shmem)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "manifest.json"), append(b, '\n'), 0o644)
}

// segment is a kept part of a run.
type segment struct {
	run        criuimg.Run
	entry      int // pagemap entry of the run
	start, end uint64
}

// private trims pagemap-<pid>.img.
func (t *trimmer) private(rawDir, imgDir string, p *criuimg.Process) error {
	idx := p.Mem.Private()
	captured := make([]uint64, len(p.VMAs))
	for _, r := range idx.Runs {
		for i, v := range p.VMAs {
			if s, e := max(r.Addr, v.Start), min(r.Addr+r.Len, v.End); s < e {
				captured[i] += e - s
			}
		}
	}
	keep := func(i int) bool {
		v := &p.VMAs[i]
		in := func(a uint64) bool { return a >= v.Start && a < v.End }
		return v.Prot&criuimg.ProtExec != 0 || v.Status&criuimg.VMAAreaStack != 0 ||
			in(p.MM.GetMmStartStack()) || in(p.MM.GetMmArgStart()) || in(p.MM.GetMmEnvStart()) ||
			captured[i] <= t.small
	}
	tr := Trim{Pagemap: idx.Name}
	var segs []segment
	for j, r := range idx.Runs {
		kept := uint64(0)
		for i, v := range p.VMAs {
			s, e := max(r.Addr, v.Start), min(r.Addr+r.Len, v.End)
			if s >= e {
				continue
			}
			if !keep(i) {
				continue
			}
			if n := len(segs); n > 0 && segs[n-1].entry == j+1 && segs[n-1].end == s {
				segs[n-1].end = e
			} else {
				segs = append(segs, segment{run: r, entry: j + 1, start: s, end: e})
			}
			kept += e - s
		}
		tr.KeptBytes += kept
		tr.DroppedBytes += r.Len - kept
	}
	for i, v := range p.VMAs {
		if captured[i] > 0 && !keep(i) {
			tr.Dropped = append(tr.Dropped, fmt.Sprintf("%x-%x prot %d %s (%d bytes)", v.Start, v.End, v.Prot, v.Path, captured[i]))
		}
	}
	t.trims = append(t.trims, tr)
	return writeTrimmed(filepath.Join(rawDir, idx.Name), imgDir, idx, segs)
}

// shmemObject trims a pagemap-shmem-<id>.img: its first t.shmem captured
// bytes stay.
func (t *trimmer) shmemObject(src criuimg.Source, rawDir, imgDir, name string, pageSize uint64) error {
	idx, err := criuimg.ReadPageIndex(src, name, pageSize)
	if err != nil {
		return err
	}
	defer idx.Close()
	tr := Trim{Pagemap: name}
	var segs []segment
	for j, r := range idx.Runs {
		n := min(r.Len, t.shmem-tr.KeptBytes)
		if n > 0 {
			segs = append(segs, segment{run: r, entry: j + 1, start: r.Addr, end: r.Addr + n})
		}
		tr.KeptBytes += n
		tr.DroppedBytes += r.Len - n
	}
	t.trims = append(t.trims, tr)
	return writeTrimmed(filepath.Join(rawDir, name), imgDir, idx, segs)
}

// writeTrimmed writes the pagemap of idx with only segs, and its pages
// file with their bytes.
func writeTrimmed(rawPagemap, imgDir string, idx *criuimg.PageIndex, segs []segment) error {
	hdr, ents, err := imgtest.ReadEntries(rawPagemap)
	if err != nil {
		return err
	}
	head := &pagemap.PagemapHead{}
	if err := proto.Unmarshal(ents[0], head); err != nil {
		return fmt.Errorf("%s: pagemap_head: %w", rawPagemap, err)
	}
	pagesName := fmt.Sprintf("pages-%d.img", head.GetPagesId())
	pf, err := os.Create(filepath.Join(imgDir, pagesName))
	if err != nil {
		return err
	}
	defer pf.Close()
	pw := bufio.NewWriter(pf)
	out := [][]byte{ents[0]}
	for _, s := range segs {
		e := &pagemap.PagemapEntry{}
		if err := proto.Unmarshal(ents[s.entry], e); err != nil {
			return fmt.Errorf("%s entry %d: %w", rawPagemap, s.entry, err)
		}
		n := (s.end - s.start) / pageSizeOf(s.run, e)
		e.Vaddr = proto.Uint64(s.start)
		if e.NrPages != nil {
			e.NrPages = proto.Uint64(n)
		} else {
			e.CompatNrPages = proto.Uint32(uint32(n))
		}
		b, err := proto.Marshal(e)
		if err != nil {
			return err
		}
		out = append(out, b)
		if !s.run.InFile() {
			continue
		}
		off := s.run.Offset + int64(s.start-s.run.Addr)
		if _, err := io.Copy(pw, io.NewSectionReader(idx.Pages, off, int64(s.end-s.start))); err != nil {
			return fmt.Errorf("%s: %w", pagesName, err)
		}
	}
	if err := pw.Flush(); err != nil {
		return err
	}
	if err := pf.Close(); err != nil {
		return err
	}
	return imgtest.WriteEntries(filepath.Join(imgDir, filepath.Base(rawPagemap)), hdr, out)
}

// pageSizeOf is the page size of a run from its entry's page count.
func pageSizeOf(r criuimg.Run, e *pagemap.PagemapEntry) uint64 {
	n := uint64(e.GetCompatNrPages())
	if e.NrPages != nil {
		n = e.GetNrPages()
	}
	return r.Len / n
}

var mapsLine = regexp.MustCompile(`^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$`)

// manifest reads run.sh's info/ directory and copies it to out/info.
func manifest(in, out string) (*Manifest, error) {
	infoIn, infoOut := filepath.Join(in, "info"), filepath.Join(out, "info")
	if err := os.MkdirAll(infoOut, 0o755); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(infoIn)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if err := copyFile(filepath.Join(infoOut, e.Name()), filepath.Join(infoIn, e.Name())); err != nil {
			return nil, err
		}
	}
	vers, err := os.ReadFile(filepath.Join(infoIn, "versions.txt"))
	if err != nil {
		return nil, err
	}
	m := &Manifest{Env: map[string]string{}}
	for _, l := range strings.Split(strings.TrimSpace(string(vers)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		v = strings.TrimSpace(v)
		switch k {
		case "program":
			m.Program = v
		case "version":
			m.Version = v
		case "root_pid":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("versions.txt: root_pid: %w", err)
			}
			m.RootPid = uint32(n)
		default:
			m.Env[k] = v
		}
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "maps-") {
			continue
		}
		pid64, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, "maps-"), ".txt"), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		pid := uint32(pid64)
		read := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(infoIn, fmt.Sprintf("%s-%d.txt", name, pid)))
			return strings.TrimRight(string(b), "\n")
		}
		pr := Proc{Pid: pid, Cmdline: strings.Split(read("cmdline"), "\n"), Exe: read("exe"), Maps: "info/" + n, AnonExec: []Mapping{}}
		for _, l := range strings.Split(read("status"), "\n") {
			k, v, _ := strings.Cut(l, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "Name":
				pr.Comm = v
			case "Threads":
				pr.Threads, _ = strconv.Atoi(v)
			}
		}
		for _, l := range strings.Split(read("maps"), "\n") {
			f := mapsLine.FindStringSubmatch(l)
			if f == nil {
				return nil, fmt.Errorf("%s: unexpected line %q", n, l)
			}
			path := strings.TrimSpace(f[4])
			if strings.Contains(f[3], "x") && (path == "" || strings.HasPrefix(path, "[anon")) {
				pr.AnonExec = append(pr.AnonExec, Mapping{Start: "0x" + f[1], End: "0x" + f[2], Perms: f[3], Path: path})
			}
			if strings.HasPrefix(path, "/SYSV") {
				pr.SysV = append(pr.SysV, Mapping{Start: "0x" + f[1], End: "0x" + f[2], Perms: f[3], Path: path})
			}
		}
		m.Procs = append(m.Procs, pr)
	}
	if b, err := os.ReadFile(filepath.Join(infoIn, "ipcs-m.txt")); err == nil {
		m.IpcsM = strings.Split(strings.Trim(string(b), "\n"), "\n")
	}
	if len(m.Procs) == 0 {
		return nil, errors.New("info/ has no maps-<pid>.txt")
	}
	sort.Slice(m.Procs, func(i, j int) bool { return m.Procs[i].Pid < m.Procs[j].Pid })
	return m, nil
}

// oracles copies IN/core.<pid>.gz and records it with the signal that
// made it (info/oracle-<pid>.txt).
func oracles(in, out string, m *Manifest) error {
	cores, err := filepath.Glob(filepath.Join(in, "core.*.gz"))
	if err != nil {
		return err
	}
	for _, c := range cores {
		name := filepath.Base(c)
		pid, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "core."), ".gz"), 10, 32)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		o := Oracle{Pid: uint32(pid), File: name}
		b, err := os.ReadFile(filepath.Join(in, "info", fmt.Sprintf("oracle-%d.txt", pid)))
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "signal="); ok {
				o.Signal = v
			}
		}
		if err := copyFile(filepath.Join(out, name), c); err != nil {
			return err
		}
		m.Oracles = append(m.Oracles, o)
	}
	return nil
}

func copyFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
