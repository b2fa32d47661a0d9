package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// podTar writes a tar of the given members (a name ending in "/" is a
// directory; a value starting with "->" a symbolic link) in order.
func podTar(t *testing.T, members [][2]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		h := &tar.Header{Name: m[0], Mode: 0o600, Typeflag: tar.TypeReg, Size: int64(len(m[1]))}
		switch {
		case strings.HasSuffix(m[0], "/"):
			h = &tar.Header{Name: m[0], Mode: 0o700, Typeflag: tar.TypeDir}
		case strings.HasPrefix(m[1], "->"):
			h = &tar.Header{Name: m[0], Typeflag: tar.TypeSymlink, Linkname: m[1][2:]}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(m[1]))
		}
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "pod.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReadPodEarlierLayout: CRI-O's earlier pod checkpoint (cri-o
// server/container_checkpoint.go before commit 7a8f62f1b7: pod.dump, the
// CRI PodSandboxConfig; pod.options with "containers" a list and the
// SELinux labels; each container a nested archive NAME.tar) is
// read: pod.dump's pod, hostname and log directory; each nested container
// archive opened in place; one that is missing named as such.
func TestReadPodEarlierLayout(t *testing.T) {
	inner := fileBytesOf(t, podTar(t, [][2]string{{"checkpoint/", ""}, {"checkpoint/inventory.img", "inv-db"}, {"config.dump", `{"name":"db"}`}}))
	p := podTar(t, [][2]string{
		{"./", ""},
		{"db.tar", string(inner)},
		{"pod.dump", `{"metadata":{"name":"shop-pod","uid":"u-1","namespace":"shop","attempt":2},"hostname":"shop-host","log_directory":"/var/log/pods/shop_shop-pod_u-1"}`},
		{"pod.options", `{"version":1,"containers":["db","web"],"mountLabel":"system_u:object_r:container_file_t:s0:c1,c2","processLabel":"system_u:system_r:container_t:s0:c1,c2"}`},
	})
	_, err := Open(p, Options{})
	var pe *PodError
	if !errors.As(err, &pe) {
		t.Fatalf("Open: %v, want a PodError", err)
	}
	pod, err := ReadPod(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := pod.Sandbox
	if s == nil || s.Name != "shop-pod" || s.UID != "u-1" || s.Namespace != "shop" || s.Attempt != 2 || s.Hostname != "shop-host" || s.LogDirectory != "/var/log/pods/shop_shop-pod_u-1" {
		t.Errorf("pod.dump %+v", s)
	}
	if !pod.Nested || pod.MountLabel == "" || pod.ProcessLabel == "" || len(pod.Containers) != 2 {
		t.Fatalf("pod %+v", pod)
	}
	if c := pod.Containers[0]; c.Name != "db" || c.Err != nil || c.Dir != "db.tar" {
		t.Errorf("db: %+v", c)
	}
	path, dir := pod.Locate(pod.Containers[0])
	ck, err := Open(path, Options{Container: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	f, err := ck.Images.Open("inventory.img")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	f.ReadAt(b, 0)
	if string(b) != "inv-db" {
		t.Errorf("db.tar's inventory.img reads %q", b)
	}
	if c := pod.Containers[1]; c.Name != "web" || c.Err == nil || !strings.Contains(c.Err.Error(), `lacks "web.tar"`) {
		t.Errorf("web: %+v", c)
	}
}

// TestPodContainerView: Options.Container reads one container's members;
// the others are still validated (a link out of the archive in another
// container's directory is refused), a duplicate inside the container is
// refused, and a container without images is named.
func TestPodContainerView(t *testing.T) {
	base := [][2]string{
		{"a-x/", ""}, {"a-x/checkpoint/", ""}, {"a-x/checkpoint/inventory.img", "inv-a"}, {"a-x/config.dump", `{"name":"x"}`},
		{"b-y/", ""}, {"b-y/checkpoint/", ""}, {"b-y/checkpoint/inventory.img", "inv-b"},
	}
	opts := `{"version":1,"containers":{"x":"a-x","y":"b-y"}}`
	p := podTar(t, append(append([][2]string{}, base...), [2]string{"pod.options", opts}))
	ck, err := Open(p, Options{Container: "b-y"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ck.Images.Open("inventory.img")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	f.ReadAt(b, 0)
	if string(b) != "inv-b" {
		t.Errorf("inventory.img of b-y reads %q", b)
	}
	if _, err := ck.Meta().Open("config.dump"); err == nil {
		t.Error("b-y has a config.dump: a-x's leaked into its view")
	}
	ck.Close()
	for _, tc := range []struct {
		name  string
		extra [2]string
		open  string
		want  string
	}{
		{"escaping link elsewhere", [2]string{"a-x/evil", "->../../etc/passwd"}, "b-y", "points outside the archive"},
		{"duplicate inside", [2]string{"b-y/checkpoint/inventory.img", "again"}, "b-y", "duplicate member"},
		{"no images", [2]string{"c-z/", ""}, "c-z", "no c-z/checkpoint/ images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := podTar(t, append(append([][2]string{}, base...), tc.extra, [2]string{"pod.options", opts}))
			_, err := Open(p, Options{Container: tc.open})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open %s: %v, want %q", tc.open, err, tc.want)
			}
		})
	}
	if _, err := ReadPod(filepath.Join("..", "..", "testdata", "x86_64", "intrusion", "before.tar"), Options{}); !errors.Is(err, ErrNotPod) {
		t.Errorf("ReadPod of before.tar: %v, want ErrNotPod", err)
	}
}

func fileBytesOf(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
