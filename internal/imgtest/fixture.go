package imgtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Testdata returns the path of testdata/elem... of the repository, from
// the test's working directory at any package depth: the first
// directory upwards whose go.mod declares this module is the
// repository's root (the fixtures' own sources have go.mod files too).
// Without one it returns the path relative to the working directory
// (opening it then fails with the path in the error).
func Testdata(elem ...string) string {
	rel := filepath.Join(append([]string{"testdata"}, elem...)...)
	dir, err := os.Getwd()
	if err != nil {
		return rel
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && isModule(b) {
			return filepath.Join(append([]string{dir, "testdata"}, elem...)...)
		}
		up := filepath.Dir(dir)
		if up == dir {
			return rel
		}
		dir = up
	}
}

// IntrusionDir is the attacked-container fixture (its README says what
// it holds): before.tar, after.tar.zst, the images and manifest.json.
func IntrusionDir() string { return Testdata("x86_64", "intrusion") }

// IntrusionArchive is the path of one archive of the intrusion fixture
// ("before.tar", "after.tar.zst", "image-docker.tar", "image-oci.tar").
func IntrusionArchive(name string) string { return filepath.Join(IntrusionDir(), name) }

// IntrusionManifest is testdata/x86_64/intrusion/manifest.json, the
// fixture's oracle (made with crit and the recipe), as far as tests read
// it.
type IntrusionManifest struct {
	Files     map[string]FixtureFile `json:"files"`
	Container struct {
		Name     string   `json:"name"`
		Hostname string   `json:"hostname"`
		Image    string   `json:"image"`
		ImageID  string   `json:"image_id"`
		Command  []string `json:"command"`
	} `json:"container"`
	Markers         map[string]string        `json:"markers"` // M_NAME -> marker
	Delivered       map[string]DeliveredFile `json:"delivered_files"`
	ProcessesAfter  []ManifestProc           `json:"processes_after"`
	Indicators      []Indicator              `json:"indicators"`
	BeforeVsAfter   BeforeVsAfter            `json:"before_vs_after"`
	MarkerHitsAfter map[string][]ManifestHit `json:"marker_hits_after"`
}

// FixtureFile is one archive of a fixture, as its manifest lists it.
type FixtureFile struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// DeliveredFile is a file the attack put into the container.
type DeliveredFile struct {
	Path   string `json:"path_in_container"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// ManifestProc is a process as the manifest lists it.
type ManifestProc struct {
	Pid        uint32   `json:"pid"`
	PPid       uint32   `json:"ppid"`
	Comm       string   `json:"comm"`
	Exe        string   `json:"exe"`
	ExeDeleted bool     `json:"exe_deleted"`
	Argv       []string `json:"argv"`
}

// ManifestSock is a socket as the manifest lists it.
type ManifestSock struct {
	Pid    uint32 `json:"pid"`
	FD     int    `json:"fd"`
	State  string `json:"state"`
	Local  string `json:"local"`
	Remote string `json:"remote"`
	Inq    string `json:"inq"`
	Image  string `json:"tcp_stream_image"`
}

// ManifestHit is one place a marker was found in the after checkpoint.
type ManifestHit struct {
	Where string `json:"where"`
	Pid   uint32 `json:"pid"`
	Vaddr string `json:"vaddr"`
}

// ManifestGhost is a ghost image of a checkpoint.
type ManifestGhost struct {
	Image      string `json:"image"`
	OrigFileID uint32 `json:"orig_file_id"`
	Path       string `json:"path"`
	Mode       string `json:"mode"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
}

// BeforeVsAfter is what the attack changed between before.tar and
// after.tar.zst.
type BeforeVsAfter struct {
	Processes struct {
		Before    []ManifestProc `json:"before"`
		AfterOnly []ManifestProc `json:"after_only"`
		Gone      []ManifestProc `json:"gone"`
	} `json:"processes"`
	Sockets struct {
		Before    []ManifestSock `json:"before"`
		AfterOnly []ManifestSock `json:"after_only"`
	} `json:"sockets"`
	Files struct {
		AfterSpecial []struct {
			Pid       uint32 `json:"pid"`
			FD        uint32 `json:"fd"`
			Type      string `json:"type"`
			Path      string `json:"path"`
			MemfdName string `json:"memfd_name"`
		} `json:"after_special"`
		GhostImagesAfter []ManifestGhost `json:"ghost_images_after"`
		MemfdInodesAfter []struct {
			Name string `json:"name"`
		} `json:"memfd_inodes_after"`
		RootfsBefore []string `json:"rootfs_diff_before"`
		RootfsAfter  []string `json:"rootfs_diff_after"`
	} `json:"files"`
}

// Indicator is one indicator of compromise the manifest lists; Pid is nil
// for one that belongs to no process. Fields an indicator does not have
// are zero.
type Indicator struct {
	ID       string  `json:"id"`
	Category string  `json:"category"`
	Pid      *uint32 `json:"pid"`
	Comm     string  `json:"comm"`
	Exe      string  `json:"exe"`
	Argv     []string
	Mapping  *struct {
		Start string `json:"start"`
		End   string `json:"end"`
		Prot  string `json:"prot"`
	} `json:"mapping"`
	// Markers are objects (marker, vaddr) or plain marker names,
	// depending on the indicator.
	Markers json.RawMessage `json:"markers"`
	Lines   []struct {
		Line    string   `json:"line"`
		FoundAt []string `json:"found_at"`
	} `json:"lines"`
	Files []struct {
		Path   string  `json:"path"`
		Type   string  `json:"type"`
		SHA256 *string `json:"sha256"`
	} `json:"files"`
}

// PidOr is the indicator's pid, or def when it has none.
func (i Indicator) PidOr(def uint32) uint32 {
	if i.Pid == nil {
		return def
	}
	return *i.Pid
}

// Intrusion reads the intrusion fixture's manifest.json, or fails tb.
func Intrusion(tb testing.TB) *IntrusionManifest {
	tb.Helper()
	var m IntrusionManifest
	ReadJSON(tb, filepath.Join(IntrusionDir(), "manifest.json"), &m)
	return &m
}

// module is the path this repository's go.mod declares.
const module = "github.com/ckpt2core/ckpt2core"

func isModule(gomod []byte) bool {
	for _, l := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == module
		}
	}
	return false
}

// ServersDir is the real server checkpoints' fixture (jvm, nginx, node,
// postgres, python, redis; its README says how they were made).
func ServersDir() string { return Testdata("x86_64", "servers") }

// Servers lists the server fixtures: the directories of ServersDir with
// a manifest.json, sorted, or fails tb when there are none.
func Servers(tb testing.TB) []string {
	tb.Helper()
	ents, err := os.ReadDir(ServersDir())
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(ServersDir(), e.Name(), "manifest.json")); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		tb.Fatalf("%s: no server fixtures", ServersDir())
	}
	return names
}

// ServerManifest is a server fixture's manifest.json (what /proc showed
// of the live processes just before the dump), as far as tests read it.
type ServerManifest struct {
	Program string
	RootPid uint32 `json:"root_pid"`
	JIT     string `json:"jit_code_cache"`
	// Oracles are the kernel's cores of the processes (core.PID.gz).
	Oracles []struct {
		Pid  uint32
		File string
	}
	Processes []struct {
		Pid      uint32
		Comm     string
		Threads  int
		Maps     string
		AnonExec []ServerMapping `json:"anon_exec_mappings"`
		SysV     []ServerMapping `json:"sysv_shm_mappings"`
	}
}

// ServerMapping is a mapping of /proc/PID/maps as a server manifest
// lists it.
type ServerMapping struct {
	Start, End, Perms, Path string
}

// Server reads the manifest of the server fixture name, or fails tb.
func Server(tb testing.TB, name string) *ServerManifest {
	tb.Helper()
	var m ServerManifest
	ReadJSON(tb, filepath.Join(ServersDir(), name, "manifest.json"), &m)
	return &m
}
