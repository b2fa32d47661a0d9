package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ghostfile "github.com/checkpoint-restore/go-criu/v8/crit/images/ghost-file"
	remapfile "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

func readExtractManifest(t *testing.T, dir string) []manifestEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m []manifestEntry
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExtractIntrusion: every file the manifest lists exists in DIR,
// mode 0600, with the listed size and sha256; the four delivered files of
// the fixture's manifest.json are among them. A symlink planted in DIR
// under the first name extract would use is left alone (its target is
// not written) and the artifact gets the next name; no temporary file is
// left.
func TestExtractIntrusion(t *testing.T) {
	fm := imgtest.Intrusion(t)
	dir := filepath.Join(t.TempDir(), "out")
	os.Mkdir(dir, 0o700)
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	planted := "ghost-42-fd5-%2Ftmp%2F.cache-sess.db"
	if err := os.Symlink(victim, filepath.Join(dir, planted)); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if st := run([]string{"extract", intrusionAfter, "-o", dir}, &stdout, &stderr); st != exitOK {
		t.Fatalf("status %d: %s", st, stderr.String())
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("written through the planted symlink: %q", b)
	}
	m := readExtractManifest(t, dir)
	sums := map[string]bool{}
	for _, e := range m {
		if e.Path == planted {
			t.Errorf("%s: the planted symlink's name reused", e.Path)
		}
		p := filepath.Join(dir, e.Path)
		st, err := os.Lstat(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if st.Mode() != 0o600 || st.Size() != e.Size {
			t.Errorf("%s: mode %v size %d, want 0600 %d", e.Path, st.Mode(), st.Size(), e.Size)
		}
		data, _ := os.ReadFile(p)
		s := sha256.Sum256(data)
		if hex.EncodeToString(s[:]) != e.SHA256 {
			t.Errorf("%s: sha256 differs from the manifest's", e.Path)
		}
		sums[e.SHA256] = true
	}
	for name, d := range fm.Delivered {
		if !sums[d.SHA256] {
			t.Errorf("delivered %s (%s) not extracted", name, d.SHA256)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".ckpt2core-tmp") {
			t.Errorf("temporary file %s left", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, planted+"-2")); err != nil {
		t.Errorf("stolen data not under the next name: %v", err)
	}
}

// TestExtractRefusals: -o a symlink is refused; unknown kinds and
// missing -o are usage errors.
func TestExtractRefusals(t *testing.T) {
	tmp := t.TempDir()
	link := filepath.Join(tmp, "link")
	os.Symlink(t.TempDir(), link)
	var stdout, stderr bytes.Buffer
	if st := run([]string{"extract", intrusionAfter, "-o", link}, &stdout, &stderr); st != exitFailed || !strings.Contains(stderr.String(), "symbolic link") {
		t.Errorf("-o symlink: status %d: %s", st, stderr.String())
	}
	for _, args := range [][]string{{"extract", intrusionAfter}, {"extract", intrusionAfter, "-o", tmp, "bogus"}, {"extract", intrusionAfter, "-o", tmp, "--pid", "4242"}} {
		stderr.Reset()
		if st := run(args, &stdout, &stderr); st != exitUsage {
			t.Errorf("%v: status %d: %s", args, st, stderr.String())
		}
	}
}

func TestCat(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if st := run([]string{"cat", intrusionAfter, "/etc/crontabs/root"}, &stdout, &stderr); st != exitOK {
		t.Fatalf("status %d: %s", st, stderr.String())
	}
	if !strings.Contains(stdout.String(), "INTRV_CRON_88ad41e6") {
		t.Errorf("cat: %q", stdout.String())
	}
	stdout.Reset()
	if st := run([]string{"cat", intrusionAfter, "/etc/nope"}, &stdout, &stderr); st != exitFailed || stdout.Len() != 0 {
		t.Errorf("missing file: status %d, %d bytes", st, stdout.Len())
	}
}

// TestExtractHostileGhost: a ghost file claiming 1 PiB (three bytes
// stored) is refused, named on stderr with its image, and the rest is
// still extracted: exit status 3.
func TestExtractHostileGhost(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(1, 0)
	p.SetArgsEnv([]string{"sh"}, []string{"A=1"})
	id := c.AddFile("/tmp/x")
	dir := c.WriteTemp(t)
	if err := imgtest.WriteImage(filepath.Join(dir, "remap-fpath.img"), criuimg.MagicRemapFpath,
		&remapfile.RemapFilePathEntry{OrigId: proto.Uint32(id), RemapId: proto.Uint32(1), RemapType: remapfile.RemapType_GHOST.Enum()}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(imgtest.Header(criuimg.MagicGhostFile))
	imgtest.AppendEntry(&b, &ghostfile.GhostFileEntry{Uid: proto.Uint32(0), Gid: proto.Uint32(0), Mode: proto.Uint32(0o100644), Chunks: proto.Bool(true), Size: proto.Uint64(1 << 50)})
	imgtest.AppendEntry(&b, &ghostfile.GhostChunkEntry{Off: proto.Uint64(0), Len: proto.Uint64(3)})
	b.WriteString("abc")
	os.WriteFile(filepath.Join(dir, "ghost-file-1.img"), b.Bytes(), 0o600)
	out := filepath.Join(t.TempDir(), "o")
	var stdout, stderr bytes.Buffer
	st := run([]string{"extract", dir, "-o", out}, &stdout, &stderr)
	if st != exitPartial || !strings.Contains(stderr.String(), "ghost-file-1.img") {
		t.Errorf("status %d: %s", st, stderr.String())
	}
	m := readExtractManifest(t, out)
	if len(m) != 1 || m[0].Kind != "env" {
		t.Errorf("manifest %+v, want the environment only", m)
	}
}
