package criuimg_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	skpacket "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-packet"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/imgtest/archived"
)

func readSpan(t *testing.T, src criuimg.Source, s criuimg.Span) string {
	t.Helper()
	r, err := s.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTCPStreamIntrusion: the implant's socket (inode 206088, manifest
// I10) holds the operator's task in its receive queue and nothing to
// send; nc's end (206047) holds nothing.
func TestTCPStreamIntrusion(t *testing.T) {
	ck := archived.Images(t, imgtest.IntrusionArchive("after.tar.zst"))
	ts, err := ck.ReadTCPStream(206088)
	if err != nil {
		t.Fatal(err)
	}
	if got := readSpan(t, ck.Src, ts.Inq); got != "TASK INTRV_TASK_e6a1b3c9\n" || ts.Outq.Len != 0 || ts.Image != "tcp-stream-32508.img" {
		t.Errorf("inq %q outq %d image %s", got, ts.Outq.Len, ts.Image)
	}
	ts, err = ck.ReadTCPStream(206047)
	if err != nil || ts.Inq.Len != 0 || ts.Outq.Len != 0 {
		t.Errorf("nc's end: %+v %v", ts, err)
	}
	if _, err := ck.ReadTCPStream(1); !criuimg.IsNotExist(err) {
		t.Errorf("no image: %v", err)
	}
}

// TestSocketQueues: packets of sk-queues.img come back by socket id, in
// order; one claiming more bytes than the image holds is a named error.
func TestSocketQueues(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	c.AddProcess(1, 0)
	dir := c.WriteTemp(t)
	var b bytes.Buffer
	b.Write(imgtest.Header(criuimg.MagicSkQueues))
	for _, p := range []struct {
		id   uint32
		data string
	}{{3, "hello"}, {4, ""}, {3, "world!"}} {
		imgtest.AppendEntry(&b, &skpacket.SkPacketEntry{IdFor: proto.Uint32(p.id), Length: proto.Uint32(uint32(len(p.data)))})
		b.WriteString(p.data)
	}
	path := filepath.Join(dir, "sk-queues.img")
	os.WriteFile(path, b.Bytes(), 0o600)
	ck := imgtest.OpenDir(t, dir)
	qs, err := ck.ReadSocketQueues()
	if err != nil || len(qs) != 3 {
		t.Fatalf("%+v %v", qs, err)
	}
	var got []string
	for _, q := range qs {
		got = append(got, readSpan(t, ck.Src, q.Data))
	}
	if qs[0].SocketID != 3 || qs[2].SocketID != 3 || strings.Join(got, "|") != "hello||world!" {
		t.Errorf("queues %+v: %q", qs, got)
	}
	imgtest.AppendEntry(&b, &skpacket.SkPacketEntry{IdFor: proto.Uint32(5), Length: proto.Uint32(1 << 31)})
	os.WriteFile(path, b.Bytes(), 0o600)
	if _, err := ck.ReadSocketQueues(); !errors.Is(err, criuimg.ErrFormat) || !strings.Contains(err.Error(), "sk-queues.img: entry 3") {
		t.Errorf("huge packet: %v", err)
	}
}
