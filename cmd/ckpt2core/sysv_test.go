package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ipcdesc "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-desc"
	ipcshm "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-shm"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/coredump"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// TestSysVShm: a process attached to a SysV shared memory segment, as
// CRIU dumps it (criu/ipc_ns.c: the segment in ipcns-shm-<ns>.img with
// in_pagemaps, its pages through dump_one_sysv_shmem in
// pagemap-shmem-<shmid>.img; criu/proc_parse.c: the mapping
// VMA_ANON_SHARED|VMA_AREA_SYSVIPC with shmid the segment's id), built
// with the image writer. The core names the mapping "/SYSV%08x (deleted)"
// with the segment's key in NT_FILE, as the kernel does, and holds its
// pages; inspect counts it as kind "sysv".
//
// Segment id 0 (the first segment of a namespace, postgres's in
// testdata/x86_64/servers/postgres) is a valid shared memory id.
func TestSysVShm(t *testing.T) {
	for _, id := range []uint64{0, 32769} {
		t.Run(fmt.Sprint(id), func(t *testing.T) { testSysVShm(t, id) })
	}
}

func testSysVShm(t *testing.T, id uint64) {
	const key = 0x0052e2c1
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(10, 0)
	p.AddAnon(0x500000, 0x501000)
	s := c.AddShmem(id, 0x3000)
	data := bytes.Repeat([]byte("PGSHM-segment-page-1 "), 200)[:4096]
	s.AddPages(0x1000, data, criuimg.PEPresent)
	v := p.MapShmem(0x7f0000000000, s, 0, criuimg.ProtRead|criuimg.ProtWrite)
	v.Status = proto.Uint32(v.GetStatus() | criuimg.VMAAreaSysVIPC)
	dir := c.WriteTemp(t)
	if err := imgtest.WriteImage(filepath.Join(dir, "ipcns-shm-11.img"), criuimg.MagicIPCNSShm, &ipcshm.IpcShmEntry{
		Desc: &ipcdesc.IpcDescEntry{Key: proto.Uint32(key), Uid: proto.Uint32(70), Gid: proto.Uint32(70), Cuid: proto.Uint32(70), Cgid: proto.Uint32(70), Mode: proto.Uint32(0o600), Id: proto.Uint32(uint32(id))},
		Size: proto.Uint64(0x3000), InPagemaps: proto.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if code, _, stderr := convertCLI(t, dir, "-o", out); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	core, err := coredump.Open(filepath.Join(out, "core.10"))
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	var named bool
	for _, n := range core.Notes {
		if n.Type == coredump.NTFile {
			named = named || bytes.Contains(n.Desc, []byte("/SYSV0052e2c1 (deleted)\x00"))
			if bytes.Contains(n.Desc, []byte("/dev/zero")) {
				t.Errorf("NT_FILE names /dev/zero: %q", n.Desc)
			}
		}
	}
	if !named {
		t.Error("NT_FILE lacks /SYSV0052e2c1 (deleted)")
	}
	got, err := core.ReadAt(0x7f0000001000, 4096)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the segment's page in the core: %v, %q...", err, got[:min(len(got), 32)])
	}
	code, stdout, stderr := convertCLI(t, "inspect", "--json", dir)
	if code != exitOK {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	var rep inspect.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	var sysv *inspect.MemKind
	for i, k := range rep.Processes[0].Memory.Kinds {
		if k.Kind == "sysv" {
			sysv = &rep.Processes[0].Memory.Kinds[i]
		}
	}
	if sysv == nil || sysv.VMAs != 1 || sysv.Bytes != 0x3000 || sysv.CapturedBytes != 0x1000 {
		t.Errorf("memory kinds %+v, want sysv: 1 mapping of 0x3000 bytes, one page captured", rep.Processes[0].Memory.Kinds)
	}
	// The segment missing from ipcns-shm: a warning, never /dev/zero.
	dir2 := c.WriteTemp(t)
	code, _, stderr = convertCLI(t, dir2, "-o", t.TempDir())
	if code != exitOK || !strings.Contains(stderr, fmt.Sprintf("SysV segment %d is not in any ipcns-shm image", id)) {
		t.Errorf("without ipcns-shm: exit %d, %s", code, stderr)
	}
}

// TestSysVPostgres converts the real postgres checkpoint (helper h19c's
// testdata/x86_64/servers/postgres: CRIU 4.2, a checkpointer process
// attached to the server's SysV segment, key 0x0098f6f5, id 0, and the
// kernel's own core of it, core.28722.gz): the mapping's NT_FILE name and
// its page equal the kernel's.
func TestSysVPostgres(t *testing.T) {
	fx := filepath.Join(imgtest.ServersDir(), "postgres")
	if _, err := os.Stat(fx); err != nil {
		t.Skip("the postgres fixture is on branch h19c until it is merged")
	}
	out := t.TempDir()
	if code, _, stderr := convertCLI(t, filepath.Join(fx, "images"), "-o", out, "--pid", "28722"); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	oracle := imgtest.Gunzip(t, filepath.Join(fx, "core.28722.gz"), t.TempDir())
	const seg = 0x7f6c46221000 // maps-28722.txt: /SYSV0098f6f5 (deleted)
	var pages [2][]byte
	for i, p := range []string{oracle, filepath.Join(out, "core.28722")} {
		c, err := coredump.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		named := false
		for _, n := range c.Notes {
			named = named || n.Type == coredump.NTFile && bytes.Contains(n.Desc, []byte("/SYSV0098f6f5 (deleted)\x00"))
		}
		if !named {
			t.Errorf("%s: NT_FILE lacks /SYSV0098f6f5 (deleted)", p)
		}
		if pages[i], err = c.ReadAt(seg, 4096); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		c.Close()
	}
	if !bytes.Equal(pages[0], pages[1]) || len(pages[0]) != 4096 {
		t.Errorf("the SysV page differs from the kernel's core")
	}
}
