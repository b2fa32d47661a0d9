package carve_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ghostfile "github.com/checkpoint-restore/go-criu/v8/crit/images/ghost-file"
	pipedata "github.com/checkpoint-restore/go-criu/v8/crit/images/pipe-data"
	remapfile "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/carve"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/imgtest/archived"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

type carved struct {
	a    carve.Artifact
	data []byte
}

func carveAll(t *testing.T, ck *criuimg.Checkpoint, opts carve.Options) ([]carved, []error) {
	t.Helper()
	var out []carved
	var probs []error
	err := carve.Carve(ck, opts, func(a carve.Artifact) error {
		r, err := a.Open()
		if err != nil {
			t.Errorf("%s %s: open: %v", a.Kind, a.Image, err)
			return nil
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil || int64(len(b)) != a.Size {
			t.Errorf("%s %s: %d bytes of %d: %v", a.Kind, a.Image, len(b), a.Size, err)
		}
		out = append(out, carved{a, b})
		return nil
	}, func(err error) { probs = append(probs, err) })
	if err != nil {
		t.Fatal(err)
	}
	return out, probs
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func openAfter(t *testing.T) (*criuimg.Checkpoint, criuimg.File) {
	t.Helper()
	a := archived.Open(t, imgtest.IntrusionArchive("after.tar.zst"))
	ck, err := criuimg.Open(a.Images)
	if err != nil {
		t.Fatal(err)
	}
	diff, err := a.RootfsDiff()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { diff.Close() })
	return ck, diff
}

// TestIntrusion checks every recovered object of the attacked container
// against manifest.json (crit's oracle, not our output): the four
// delivered files by sha256 (the implant, stolen data and hook .so as
// ghost files, the payload as memfd), the implant and payload again as
// the executables of pids 42 and 44, the operator's task in the implant's
// TCP receive queue, every added file of the rw layer by sha256, and
// LD_PRELOAD in pid 57's environment.
func TestIntrusion(t *testing.T) {
	m := imgtest.Intrusion(t)
	ck, diff := openAfter(t)
	got, probs := carveAll(t, ck, carve.Options{RootfsDiff: diff})
	for _, p := range probs {
		t.Errorf("problem: %v", p)
	}
	find := func(kind carve.Kind, path string) []carved {
		var out []carved
		for _, c := range got {
			if c.a.Kind == kind && c.a.Path == path {
				out = append(out, c)
			}
		}
		return out
	}
	if len(m.Delivered) != 4 {
		t.Fatalf("manifest: %d delivered files", len(m.Delivered))
	}
	for name, d := range m.Delivered {
		kind := carve.KindGhost
		if name == "memfd-elf" {
			kind = carve.KindMemfd
		}
		cs := find(kind, d.Path)
		if len(cs) != 1 {
			t.Errorf("%s: %d %s artifacts of %s", name, len(cs), kind, d.Path)
			continue
		}
		if s := sum(cs[0].data); s != d.SHA256 || cs[0].a.Size != d.Size {
			t.Errorf("%s: %d bytes sha256 %s, want %d %s", name, cs[0].a.Size, s, d.Size, d.SHA256)
		}
	}
	for pid, name := range map[uint32]string{42: "implant", 44: "memfd-elf"} {
		var exe []carved
		for _, c := range got {
			if c.a.Kind == carve.KindExe && c.a.Pid == pid {
				exe = append(exe, c)
			}
		}
		if len(exe) != 1 || sum(exe[0].data) != m.Delivered[name].SHA256 {
			t.Errorf("pid %d: %d exe artifacts, want the %s", pid, len(exe), name)
		}
	}
	// The stolen data is fd 5 of pid 42 (manifest I09).
	if c := find(carve.KindGhost, "/tmp/.cache-sess.db"); len(c) == 1 && (c[0].a.Pid != 42 || c[0].a.FD != 5 || c[0].a.Image != "ghost-file-2.img") {
		t.Errorf("stolen data: pid %d fd %d image %s, want 42 5 ghost-file-2.img", c[0].a.Pid, c[0].a.FD, c[0].a.Image)
	}
	nq := 0
	for _, s := range m.BeforeVsAfter.Sockets.AfterOnly {
		if s.Inq == "" {
			continue
		}
		nq++
		found := false
		for _, c := range got {
			if c.a.Kind == carve.KindTCPQueue && c.a.Pid == s.Pid && c.a.FD == s.FD && c.a.Image == s.Image {
				found = true
				if string(c.data) != s.Inq || !strings.HasSuffix(c.a.Label, "-inq") {
					t.Errorf("pid %d fd %d: queue %s %q, want the inq %q", s.Pid, s.FD, c.a.Label, c.data, s.Inq)
				}
			}
		}
		if !found {
			t.Errorf("pid %d fd %d: no queue from %s", s.Pid, s.FD, s.Image)
		}
	}
	if nq != 1 {
		t.Errorf("manifest: %d non-empty receive queues, want 1 (the task)", nq)
	}
	nf := 0
	for _, ind := range m.Indicators {
		if ind.ID != "I13" {
			continue
		}
		for _, f := range ind.Files {
			if f.Type != "file" {
				continue
			}
			nf++
			cs := find(carve.KindRootfs, f.Path)
			if len(cs) != 1 || sum(cs[0].data) != *f.SHA256 {
				t.Errorf("rw layer %s: %d artifacts, want one with sha256 %s", f.Path, len(cs), *f.SHA256)
			}
		}
	}
	if nf != 4 {
		t.Errorf("manifest I13: %d files, want 4", nf)
	}
	env := false
	for _, c := range got {
		if c.a.Kind == carve.KindEnv && c.a.Pid == 57 {
			env = bytes.Contains(c.data, []byte("\x00LD_PRELOAD=/tmp/.font-unix/libfc-hook.so\x00")) || bytes.HasPrefix(c.data, []byte("LD_PRELOAD=/tmp/.font-unix/libfc-hook.so\x00"))
		}
	}
	if !env {
		t.Error("pid 57: no environment with LD_PRELOAD (manifest I07)")
	}
	// The shell's history (manifest I12: its seven lines, in order).
	var hist []string
	for _, ind := range m.Indicators {
		if ind.ID == "I12" {
			for _, l := range ind.Lines {
				hist = append(hist, l.Line)
			}
		}
	}
	var hs []carved
	for _, c := range got {
		if c.a.Kind == carve.KindHistory {
			hs = append(hs, c)
		}
	}
	if len(hist) != 7 || len(hs) != 1 || hs[0].a.Pid != 68 {
		t.Fatalf("manifest: %d history lines; %d history artifacts", len(hist), len(hs))
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(string(hs[0].data), "\n"), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if !slices.Equal(lines, hist) {
		t.Errorf("history %q, want %q", lines, hist)
	}

	// --pid 42: only its objects; the hook .so (pid 57's) is left out.
	only, _ := carveAll(t, ck, carve.Options{Pid: 42, Kinds: []carve.Kind{carve.KindGhost}})
	if len(only) != 2 {
		t.Errorf("pid 42 ghosts: %d, want 2 (implant, stolen data)", len(only))
	}
	for _, c := range only {
		if c.a.Pid != 42 {
			t.Errorf("pid 42 ghosts: one of pid %d", c.a.Pid)
		}
	}
	if err := carve.Carve(ck, carve.Options{Pid: 4242}, func(carve.Artifact) error { return nil }, nil); !errors.Is(err, carve.ErrNoPid) {
		t.Errorf("unknown pid: %v", err)
	}
}

// TestCatIntrusion: OpenRootfsFile finds the attacker's crontab.
func TestCatIntrusion(t *testing.T) {
	_, diff := openAfter(t)
	a, ok, err := carve.OpenRootfsFile(diff, "/etc/crontabs/root")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	r, _ := a.Open()
	b, _ := io.ReadAll(r)
	if !bytes.Contains(b, []byte("INTRV_CRON_88ad41e6")) {
		t.Errorf("crontab %q", b)
	}
	if _, ok, _ := carve.OpenRootfsFile(diff, "/etc/passwd"); ok {
		t.Error("/etc/passwd (from the image, not the rw layer) found")
	}
}

// TestPipelinePipe: the arm64 pipeline's pipe (pipe:[11160], the
// producer's fd 1 and cat's fd 0 in facts.json) is listed by
// pipes-data.img with an empty buffer (cat had read the line: it is in
// cat's read buffer per facts.json), so extract writes no pipe file.
func TestPipelinePipe(t *testing.T) {
	ck := imgtest.OpenDir(t, imgtest.Testdata("arm64/pipeline/images"))
	pds, err := ck.ReadPipeData(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(pds) != 1 || pds[0].PipeID != 11160 || pds[0].Data.Len != 0 {
		t.Fatalf("pipes data %+v, want pipe 11160 empty", pds)
	}
	got, _ := carveAll(t, ck, carve.Options{Kinds: []carve.Kind{carve.KindPipe}})
	if len(got) != 0 {
		t.Errorf("%d pipe artifacts of an empty pipe", len(got))
	}
}

// TestPipeBuffers: pipes-data.img entries from the image writer: the
// bytes of each pipe come back; a size claimed beyond the image is a
// named error.
func TestPipeBuffers(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	c.AddProcess(1, 0)
	dir := c.WriteTemp(t)
	var b bytes.Buffer
	b.Write(imgtest.Header(criuimg.MagicPipesData))
	for _, p := range []struct {
		id   uint32
		data string
	}{{7, "first pipe"}, {9, "second\x00pipe"}} {
		imgtest.AppendEntry(&b, &pipedata.PipeDataEntry{PipeId: proto.Uint32(p.id), Bytes: proto.Uint32(uint32(len(p.data)))})
		b.WriteString(p.data)
	}
	os.WriteFile(filepath.Join(dir, "pipes-data.img"), b.Bytes(), 0o600)
	ck := imgtest.OpenDir(t, dir)
	got, probs := carveAll(t, ck, carve.Options{Kinds: []carve.Kind{carve.KindPipe}})
	if len(probs) != 0 || len(got) != 2 || string(got[0].data) != "first pipe" || string(got[1].data) != "second\x00pipe" || got[1].a.Label != "pipe-9" {
		t.Errorf("pipes: %+v %v", got, probs)
	}
	// One more entry claiming 1 GiB.
	imgtest.AppendEntry(&b, &pipedata.PipeDataEntry{PipeId: proto.Uint32(11), Bytes: proto.Uint32(1 << 30)})
	b.WriteString("short")
	os.WriteFile(filepath.Join(dir, "pipes-data.img"), b.Bytes(), 0o600)
	_, err := ck.ReadPipeData(false)
	if !errors.Is(err, criuimg.ErrFormat) || !bytes.Contains([]byte(err.Error()), []byte("pipes-data.img: entry 2")) {
		t.Errorf("huge pipe: %v", err)
	}
}

// hostileGhost writes a checkpoint with a ghost file named name holding
// data, claiming size (chunked) or plain when size is 0.
func hostileGhost(t *testing.T, name string, data []byte, size uint64) string {
	t.Helper()
	c := imgtest.New(imgtest.X86_64)
	c.AddProcess(1, 0)
	id := c.AddFile(name)
	dir := c.WriteTemp(t)
	if err := imgtest.WriteImage(filepath.Join(dir, "remap-fpath.img"), criuimg.MagicRemapFpath,
		&remapfile.RemapFilePathEntry{OrigId: proto.Uint32(id), RemapId: proto.Uint32(1), RemapType: remapfile.RemapType_GHOST.Enum()}); err != nil {
		t.Fatal(err)
	}
	e := &ghostfile.GhostFileEntry{Uid: proto.Uint32(0), Gid: proto.Uint32(0), Mode: proto.Uint32(0o100755)}
	var b bytes.Buffer
	b.Write(imgtest.Header(criuimg.MagicGhostFile))
	if size != 0 {
		e.Chunks, e.Size = proto.Bool(true), proto.Uint64(size)
		imgtest.AppendEntry(&b, e)
		imgtest.AppendEntry(&b, &ghostfile.GhostChunkEntry{Off: proto.Uint64(0), Len: proto.Uint64(uint64(len(data)))})
	} else {
		imgtest.AppendEntry(&b, e)
	}
	b.Write(data)
	if err := os.WriteFile(filepath.Join(dir, "ghost-file-1.img"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestHostileGhosts: a ghost claiming a huge size is refused with
// ErrGhostSize naming its image (and does not stop the other kinds); a
// name with ../ and / gives a one-component file name.
func TestHostileGhosts(t *testing.T) {
	dir := hostileGhost(t, "/tmp/x", []byte("abc"), 1<<50)
	got, probs := carveAll(t, imgtest.OpenDir(t, dir), carve.Options{})
	for _, c := range got {
		if c.a.Kind == carve.KindGhost {
			t.Errorf("huge ghost carved: %+v", c.a)
		}
	}
	if len(probs) != 1 || !errors.Is(probs[0], criuimg.ErrGhostSize) || !bytes.Contains([]byte(probs[0].Error()), []byte("ghost-file-1.img")) {
		t.Errorf("problems %v, want one ErrGhostSize naming ghost-file-1.img", probs)
	}

	dir = hostileGhost(t, "../../../etc/passwd\n/..", []byte("pwned"), 0)
	got, probs = carveAll(t, imgtest.OpenDir(t, dir), carve.Options{Kinds: []carve.Kind{carve.KindGhost}})
	if len(got) != 1 || len(probs) != 0 {
		t.Fatalf("%d artifacts %v", len(got), probs)
	}
	n := carve.FileName(got[0].a)
	if n != "ghost-..%2F..%2F..%2Fetc%2Fpasswd%0A%2F.." || filepath.Base(n) != n || string(got[0].data) != "pwned" {
		t.Errorf("name %q data %q", n, got[0].data)
	}
}

func TestFileName(t *testing.T) {
	long := bytes.Repeat([]byte("/a"), 300)
	tests := []struct {
		a    carve.Artifact
		want string
	}{
		{carve.Artifact{Kind: carve.KindGhost, Pid: 42, FD: 5, Path: "/tmp/.cache-sess.db"}, "ghost-42-fd5-%2Ftmp%2F.cache-sess.db"},
		{carve.Artifact{Kind: carve.KindEnv, Pid: 1, FD: -1, Label: "environ"}, "env-1-environ"},
		{carve.Artifact{Kind: carve.KindRootfs, FD: -1, Path: ".."}, "rootfs-.."},
		{carve.Artifact{Kind: carve.KindTmpfs, FD: -1, Label: "\x1b[31m%"}, "tmpfs-%1B%5B31m%25"},
	}
	for _, tt := range tests {
		if got := carve.FileName(tt.a); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.a, got, tt.want)
		}
	}
	n := carve.FileName(carve.Artifact{Kind: carve.KindRootfs, FD: -1, Path: string(long)})
	if len(n) > carve.MaxNameLen || filepath.Base(n) != n {
		t.Errorf("long name %q (%d bytes)", n, len(n))
	}
	if n2 := carve.FileName(carve.Artifact{Kind: carve.KindRootfs, FD: -1, Path: string(long) + "b"}); n2 == n {
		t.Error("two long names collide")
	}
}

// TestExeFromRWLayer: a process whose executable the container added
// (it is in rootfs-diff.tar) gets an exe artifact with the member's
// bytes; one whose executable is not there gets none.
func TestExeFromRWLayer(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	c.AddProcess(1, 0).SetExe("/usr/local/bin/dropper")
	c.AddProcess(2, 1).SetExe("/bin/sh")
	dir := c.WriteTemp(t)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range []struct{ name, data string }{{"etc/motd", "hi"}, {"usr/local/bin/dropper", "\x7fELF dropper"}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.data))
	}
	tw.Close()
	os.WriteFile(filepath.Join(dir, "rootfs-diff.tar"), tb.Bytes(), 0o600)
	src := imgtest.DirSource(t, dir)
	diff, err := src.Open("rootfs-diff.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer diff.Close()
	ck := imgtest.OpenDir(t, dir)
	got, probs := carveAll(t, ck, carve.Options{RootfsDiff: diff, Kinds: []carve.Kind{carve.KindExe}})
	if len(probs) != 0 || len(got) != 1 || got[0].a.Pid != 1 || string(got[0].data) != "\x7fELF dropper" || got[0].a.Image != "rootfs-diff.tar" {
		t.Errorf("exes %+v %v", got, probs)
	}
}

// TestTmpfsFiles: each regular file of a tmpfs archive image is an
// artifact (the archive itself one more); a member claiming more than
// MaxTmpfsBytes is refused with ErrTmpfsLimit naming the image, after the
// members before it.
func TestTmpfsFiles(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	c.AddProcess(1, 0)
	dir := c.WriteTemp(t)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o1777})
	for _, f := range []struct{ name, data string }{{"./pulse-shm-1", "shared secret"}, {"./../../x", "up"}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.data))
	}
	tw.Flush()
	tw.WriteHeader(&tar.Header{Name: "./bomb", Mode: 0o600, Size: carve.MaxTmpfsBytes + 1, Typeflag: tar.TypeReg})
	tw.Flush() // the header only: its bytes are never there
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb.Bytes())
	zw.Close()
	os.WriteFile(filepath.Join(dir, "tmpfs-dev-7.tar.gz.img"), gz.Bytes(), 0o600)
	got, probs := carveAll(t, imgtest.OpenDir(t, dir), carve.Options{Kinds: []carve.Kind{carve.KindTmpfs}})
	var files []string
	for _, g := range got {
		if g.a.Path != "" {
			files = append(files, g.a.Path+"="+string(g.data))
		}
	}
	if len(got) != 3 || !slices.Equal(files, []string{"/(mount 7)/pulse-shm-1=shared secret", "/(mount 7)/x=up"}) {
		t.Errorf("tmpfs artifacts %q (%d)", files, len(got))
	}
	if len(probs) != 1 || !errors.Is(probs[0], carve.ErrTmpfsLimit) || !strings.Contains(probs[0].Error(), "tmpfs-dev-7.tar.gz.img") {
		t.Errorf("problems %v", probs)
	}
	// A second Open of a member decompresses the archive again.
	err := carve.Carve(imgtest.OpenDir(t, dir), carve.Options{Kinds: []carve.Kind{carve.KindTmpfs}}, func(a carve.Artifact) error {
		if a.Path == "" {
			return nil
		}
		for range 2 {
			r, err := a.Open()
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(r)
			r.Close()
			if int64(len(b)) != a.Size || (a.Path == "/(mount 7)/x" && string(b) != "up") {
				t.Errorf("%s: %q", a.Path, b)
			}
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// TestReportGiven: with the caller's inspect report (as 'ckpt2core
// report' passes the one it made, with environments) Carve yields the
// same artifacts, holders included, as when it inspects itself.
func TestReportGiven(t *testing.T) {
	ck, diff := openAfter(t)
	own, ownProbs := carveAll(t, ck, carve.Options{RootfsDiff: diff})
	rep, err := inspect.Inspect(ck, inspect.Options{Env: true})
	if err != nil {
		t.Fatal(err)
	}
	given, givenProbs := carveAll(t, ck, carve.Options{RootfsDiff: diff, Report: rep})
	if len(own) == 0 || len(own) != len(given) || len(ownProbs) != len(givenProbs) {
		t.Fatalf("%d artifacts (%d problems) own, %d (%d) given", len(own), len(ownProbs), len(given), len(givenProbs))
	}
	for i := range own {
		a, b := own[i].a, given[i].a
		if a.Kind != b.Kind || a.Pid != b.Pid || a.FD != b.FD || !slices.Equal(a.Refs, b.Refs) || a.Path != b.Path || a.Image != b.Image || a.Entry != b.Entry || sum(own[i].data) != sum(given[i].data) {
			t.Errorf("artifact %d: own %+v, given %+v", i, a, b)
		}
	}
}
