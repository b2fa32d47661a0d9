package criuimg_test

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"google.golang.org/protobuf/proto"
)

// Real fixtures (testdata/README.md): their image directories and the
// manifests (x86_64) or facts (arm64) written when they were made.

type fixture struct {
	Arch   string // "x86_64" or "arm64"
	Name   string
	Dir    string // images directory
	CRIU42 bool   // pagemap entries carry field 5 (CRIU >= 4.2)
	Procs  []fixtureProc
	// Secrets maps a string to the (pid, address) pairs where it lies in
	// captured private pages.
	Secrets []fixtureSecret
	// DeclaredSecrets counts the secret strings the manifest or facts
	// declare (with or without an address).
	DeclaredSecrets int
	// Argv is the command line of the root process, arguments separated
	// by NUL (from the manifest), "" if unknown.
	Argv map[uint32][]string
}

type fixtureProc struct {
	Pid, PPid uint32
	Comm      string
	Zombie    bool
	Tids      []uint64
	Names     []string // thread names, by Tids index ("" unknown)
}

type fixtureSecret struct {
	String string
	Pid    uint32
	Addr   uint64
}

var fixtureNames = []struct {
	arch, name string
	criu42     bool
}{
	{"x86_64", "threads-c", true},
	{"x86_64", "threads-c-criu411", false},
	{"x86_64", "static-c", true},
	{"x86_64", "go-goroutines", true},
	{"x86_64", "counter", true},
	{"arm64", "threads-c", false},
	{"arm64", "pipeline", false},
	{"arm64", "go-goroutines", false},
}

func loadFixtures(t *testing.T) []fixture {
	t.Helper()
	var out []fixture
	for _, fn := range fixtureNames {
		base := filepath.Join("..", "testdata", fn.arch, fn.name)
		f := fixture{Arch: fn.arch, Name: fn.name, Dir: filepath.Join(base, "images"), CRIU42: fn.criu42, Argv: map[uint32][]string{}}
		if fn.arch == "x86_64" {
			loadManifest(t, filepath.Join(base, "manifest.json"), &f)
		} else {
			loadFacts(t, filepath.Join(base, "facts.json"), &f)
		}
		out = append(out, f)
	}
	return out
}

func fixtureByName(t *testing.T, arch, name string) fixture {
	t.Helper()
	for _, f := range loadFixtures(t) {
		if f.Arch == arch && f.Name == name {
			return f
		}
	}
	t.Fatalf("no fixture %s/%s", arch, name)
	return fixture{}
}

func parseAddr(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	return v
}

func loadManifest(t *testing.T, path string, f *fixture) {
	var m struct {
		Processes []struct {
			Pid, Ppid uint32
			Comm      string
			State     string
			Threads   []struct {
				Tid  uint64
				Comm *string
			}
		}
		Secrets []struct {
			String          string
			PrivatePageHits []struct {
				Pid   uint32
				Vaddr string
			} `json:"private_page_hits"`
		}
		Argv string
	}
	imgtest.ReadJSON(t, path, &m)
	for _, p := range m.Processes {
		fp := fixtureProc{Pid: p.Pid, PPid: p.Ppid, Comm: p.Comm, Zombie: p.State != "Alive"}
		for _, th := range p.Threads {
			fp.Tids = append(fp.Tids, th.Tid)
			name := ""
			if th.Comm != nil {
				name = *th.Comm
			}
			fp.Names = append(fp.Names, name)
		}
		f.Procs = append(f.Procs, fp)
	}
	f.DeclaredSecrets = len(m.Secrets)
	for _, s := range m.Secrets {
		for _, h := range s.PrivatePageHits {
			f.Secrets = append(f.Secrets, fixtureSecret{String: s.String, Pid: h.Pid, Addr: parseAddr(t, h.Vaddr)})
		}
	}
	if len(f.Procs) == 0 {
		t.Fatalf("%s: no processes", path)
	}
}

func loadFacts(t *testing.T, path string, f *fixture) {
	var m struct {
		Processes []struct {
			Pid, Ppid uint32
			Comm      string
			Argv      []string
			Threads   []struct {
				Tid  uint64
				Name string
			}
		}
		Secrets map[string]json.RawMessage
	}
	imgtest.ReadJSON(t, path, &m)
	for _, p := range m.Processes {
		fp := fixtureProc{Pid: p.Pid, PPid: p.Ppid, Comm: p.Comm}
		for _, th := range p.Threads {
			fp.Tids = append(fp.Tids, th.Tid)
			fp.Names = append(fp.Names, th.Name)
		}
		f.Procs = append(f.Procs, fp)
		if len(p.Argv) > 0 {
			f.Argv[p.Pid] = p.Argv
		}
	}
	// Secrets: {"string": ..., "vaddr": ..., "pid": ...} (pid absent: the
	// only process). Without a vaddr, a single-process fixture gives the
	// addresses where the fact finder saw the string in the oracle core
	// ("found_in_oracle_core_at": string -> addresses; per pid, and not
	// read here, in multi-process fixtures), as internal/e2e does.
	var seen map[string][]string
	if r, ok := m.Secrets["found_in_oracle_core_at"]; ok && len(m.Processes) == 1 {
		if err := json.Unmarshal(r, &seen); err != nil {
			t.Fatalf("%s: found_in_oracle_core_at: %v", path, err)
		}
	}
	for key, raw := range m.Secrets {
		var s struct {
			String string
			Vaddr  string
			Pid    uint32
		}
		if json.Unmarshal(raw, &s) != nil || s.String == "" {
			continue // not a secret (addresses of symbols, notes)
		}
		f.DeclaredSecrets++
		if s.Pid == 0 {
			if len(m.Processes) != 1 {
				t.Fatalf("%s: secret %s names no pid", path, key)
			}
			s.Pid = m.Processes[0].Pid
		}
		addrs := seen[s.String]
		if s.Vaddr != "" {
			addrs = []string{s.Vaddr}
		}
		for _, a := range addrs {
			f.Secrets = append(f.Secrets, fixtureSecret{String: s.String, Pid: s.Pid, Addr: parseAddr(t, a)})
		}
	}
}

// openDir opens the checkpoint in dir and returns criuimg.Open's error,
// for the tests that check it (imgtest.OpenDir fails the test instead).
func openDir(t *testing.T, dir string) (*criuimg.Checkpoint, error) {
	t.Helper()
	return criuimg.Open(imgtest.DirSource(t, dir))
}

// TestFileEntries: the checkpoint keeps every entry of files.img, of any
// kind, decoded once. counter runs `python3 counter.py 2>&1 | tee
// /opt/fixture/run/logfile` (manifest.json argv): its files.img holds the
// pipe between python3 and tee, tee's logfile, and python3's listening
// socket.
func TestFileEntries(t *testing.T) {
	ck := imgtest.OpenDir(t, filepath.Join("..", "testdata", "x86_64", "counter", "images"))
	n, pipes, listening, logfile := 0, 0, 0, false
	err := criuimg.EachEntry(ck.Src, "files.img", criuimg.MagicFiles, func() *fdinfo.FileEntry { return &fdinfo.FileEntry{} },
		func(want *fdinfo.FileEntry) error {
			n++
			got, ok := ck.FileEntry(want.GetId())
			if !ok || !proto.Equal(got, want) {
				t.Errorf("file %d: %v, want %v", want.GetId(), got, want)
			}
			pipes += btoi(got.GetPipe() != nil)
			listening += btoi(got.GetIsk().GetState() == 10) // TCP_LISTEN
			logfile = logfile || got.GetReg().GetName() == "/opt/fixture/run/logfile"
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if ck.FileCount() != n || pipes == 0 || listening == 0 || !logfile {
		t.Errorf("%d files of %d, %d pipes, %d listening sockets, logfile %v", ck.FileCount(), n, pipes, listening, logfile)
	}
	if _, ok := ck.FileEntry(math.MaxUint32); ok {
		t.Error("an id files.img lacks is found")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
