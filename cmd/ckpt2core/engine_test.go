package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// intrusionBefore extracts the real Podman export before.tar (the
// intrusion fixture: container intr-web, hostname web-frontend) and returns
// the directory.
func intrusionBefore(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(intrusionDir, "before.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return imgtest.Untar(t, tar.NewReader(f))
}

// engineTar writes an archive at path: the members in order (a name ending
// in "/" is a directory; "checkpoint/" is followed by every CRIU image of
// images).
type tarMember struct {
	name string
	data []byte
}

func engineTar(t *testing.T, path, images string, members []tarMember) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range members {
		if strings.HasSuffix(m.name, "/") {
			if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o700, Typeflag: tar.TypeDir}); err != nil {
				t.Fatal(err)
			}
			if m.name == "checkpoint/" {
				ents, err := os.ReadDir(images)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					b, err := os.ReadFile(filepath.Join(images, e.Name()))
					if err != nil {
						t.Fatal(err)
					}
					writeMember(t, tw, "checkpoint/"+e.Name(), b)
				}
			}
			continue
		}
		writeMember(t, tw, m.name, m.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeMember(t *testing.T, tw *tar.Writer, name string, data []byte) {
	t.Helper()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
}

// rwLayer returns a layer tar (gzip-compressed if gz): the regular files
// of before's rootfs-diff.tar, then the given whiteouts, as an OCI layer
// (containerd's diff service) writes them.
func rwLayer(t *testing.T, before string, gz bool, whiteouts ...string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(before, "rootfs-diff.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, wh := range whiteouts {
		if err := tw.WriteHeader(&tar.Header{Name: wh, Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inspectJSON runs inspect --json on path and decodes the report.
func engineReport(t *testing.T, path string, args ...string) *inspect.Report {
	t.Helper()
	code, stdout, stderr := convertCLI(t, append([]string{"inspect", "--json", path}, args...)...)
	if code != exitOK {
		t.Fatalf("inspect %s: exit %d: %s", path, code, stderr)
	}
	var rep inspect.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("inspect --json: %v", err)
	}
	return &rep
}

func diffOf(rep *inspect.Report, path string) (inspect.DiffFile, bool) {
	for _, d := range rep.RootfsDiff {
		if d.Path == path {
			return d, true
		}
	}
	return inspect.DiffFile{}, false
}

// sameCores converts the archive and the image directory and checks that
// every core is byte-identical.
func sameCores(t *testing.T, archive, images string) {
	t.Helper()
	tmp := t.TempDir()
	a, d := filepath.Join(tmp, "a"), filepath.Join(tmp, "d")
	if code, _, stderr := convertCLI(t, archive, "-o", a); code != exitOK {
		t.Fatalf("convert %s: exit %d: %s", archive, code, stderr)
	}
	if code, _, stderr := convertCLI(t, images, "-o", d); code != exitOK {
		t.Fatalf("convert %s: exit %d: %s", images, code, stderr)
	}
	ca, cd := coresIn(t, a), coresIn(t, d)
	if len(cd) == 0 || len(ca) != len(cd) {
		t.Fatalf("%d cores from the archive, %d from the directory", len(ca), len(cd))
	}
	for n, b := range cd {
		if !bytes.Equal(b, ca[n]) {
			t.Errorf("%s from the archive differs from the directory's", n)
		}
	}
}

// TestContainerdArchive builds a checkpoint archive as containerd 2.x's
// CRI CheckpointContainer writes it (containerd
// internal/cri/server/container_checkpoint_linux.go): status, stats-dump,
// dump.log, container.log, config.dump (checkpointctl's ContainerConfig),
// status.dump (the CRI ContainerStatus as JSON), checkpoint/ (the CRIU
// images, here the real ones of the intrusion fixture's before.tar),
// rootfs-diff.tar (the rw layer blob: gzip, OCI whiteouts) and spec.dump,
// then checks what inspect shows and that its cores equal the directory's.
func TestContainerdArchive(t *testing.T) {
	before := intrusionBefore(t)
	images := filepath.Join(before, "checkpoint")
	tmp := t.TempDir()
	arch := filepath.Join(tmp, "containerd.tar")
	spec := `{"ociVersion":"1.1.0","hostname":"web-frontend","process":{"args":["/bin/sh","-c","httpd"]},"annotations":{` +
		`"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"web",` +
		`"io.kubernetes.cri.sandbox-name":"intr-pod","io.kubernetes.cri.sandbox-namespace":"shop",` +
		`"io.kubernetes.cri.image-name":"localhost/intrusion-web:visible"}}`
	status := `{"id":"5f1c0ffee","metadata":{"name":"web","attempt":0},"state":1,"created_at":1764683754907135180,` +
		`"started_at":1764683755000000000,"image":{"image":"localhost/intrusion-web:visible"},` +
		`"image_ref":"sha256:4b1e1e0f0e5e8c1f00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee",` +
		`"labels":{"io.kubernetes.container.name":"web","io.kubernetes.pod.name":"intr-pod","io.kubernetes.pod.namespace":"shop"},` +
		`"annotations":{},"log_path":"/var/log/pods/shop_intr-pod_uid/web/0.log"}`
	config := `{"id":"5f1c0ffee","name":"web","rootfsImage":"localhost/intrusion-web:visible",` +
		`"rootfsImageRef":"sha256:4b1e1e0f0e5e8c1f00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee",` +
		`"rootfsImageName":"localhost/intrusion-web:visible","runtime":"io.containerd.runc.v2",` +
		`"createdTime":"2026-12-02T13:55:54.90713518Z","checkpointedTime":"2026-12-02T13:56:40.5Z","restoredTime":"0001-01-01T00:00:00Z","restored":false}`
	// containerd's archive.Diff writes the cpPath tree in name order.
	engineTar(t, arch, images, []tarMember{
		{"checkpoint/", nil},
		{"config.dump", []byte(config)},
		{"container.log", []byte("2026-12-02T13:55:55Z stdout F started\n")},
		{"dump.log", []byte("(00.000000) Dumping finished successfully\n")},
		{"rootfs-diff.tar", rwLayer(t, before, true, "etc/.wh.group", "tmp/.wh..wh..opq")},
		{"spec.dump", []byte(spec)},
		{"stats-dump", fileBytes(t, filepath.Join(before, "stats-dump"))},
		{"status", []byte(`{"Pid":1234,"CreatedAt":1764683754907135180,"StartedAt":1764683755000000000}`)},
		{"status.dump", []byte(status)},
	})
	rep := engineReport(t, arch)
	c := rep.Container
	if c == nil {
		t.Fatalf("no container; warnings %q", rep.Warnings)
	}
	for k, v := range map[string][2]string{
		"engine":       {c.Engine, "containerd"},
		"name":         {c.Name, "web"},
		"pod":          {c.Pod, "intr-pod"},
		"namespace":    {c.Namespace, "shop"},
		"image":        {c.Image, "localhost/intrusion-web:visible"},
		"image_ref":    {c.ImageRef, "sha256:4b1e1e0f0e5e8c1f00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee"},
		"log_path":     {c.LogPath, "/var/log/pods/shop_intr-pod_uid/web/0.log"},
		"created":      {c.Created, "2026-12-02T13:55:54.90713518Z"},
		"checkpointed": {c.Checkpointed, "2026-12-02T13:56:40.5Z"},
		"runtime":      {c.Runtime, "io.containerd.runc.v2"},
	} {
		if v[0] != v[1] {
			t.Errorf("container %s = %q, want %q", k, v[0], v[1])
		}
	}
	if !slices.Contains(c.Logs, inspect.LogFile{Member: "container.log", Size: 38}) {
		t.Errorf("logs %+v, want container.log of 38 bytes", c.Logs)
	}
	// The rw layer: /www/index.html (README: written at start, in the
	// rootfs diff of both archives) and the two whiteouts as deletions.
	if d, ok := diffOf(rep, "www/index.html"); !ok || d.Type != "file" {
		t.Errorf("www/index.html: %+v, %v; want a file", d, ok)
	}
	if d, ok := diffOf(rep, "etc/group"); !ok || d.Type != "deleted" {
		t.Errorf("etc/group: %+v, %v; want deleted", d, ok)
	}
	if d, ok := diffOf(rep, "tmp"); !ok || d.Type != "opaque" {
		t.Errorf("tmp: %+v, %v; want opaque", d, ok)
	}
	for _, d := range rep.RootfsDiff {
		if strings.Contains(d.Path, ".wh.") {
			t.Errorf("whiteout listed as a file: %+v", d)
		}
	}
	for _, w := range rep.Warnings {
		if strings.Contains(w, "rootfs-diff") {
			t.Errorf("warning %q", w)
		}
	}
	checkUTS(t, rep)
	sameCores(t, arch, images)
}

// checkUTS checks the host name the CRIU images hold (README: container
// intr-web runs with --hostname web-frontend) and the sizes.
func checkUTS(t *testing.T, rep *inspect.Report) {
	t.Helper()
	if len(rep.UTS) != 1 || rep.UTS[0].Hostname != "web-frontend" || rep.UTS[0].Image != "utsns-12.img" {
		t.Errorf("uts %+v, want web-frontend from utsns-12.img", rep.UTS)
	}
	if rep.Sizes == nil || rep.Sizes.MemoryPagesBytes <= 0 || rep.Sizes.CheckpointBytes <= rep.Sizes.MemoryPagesBytes {
		t.Errorf("sizes %+v", rep.Sizes)
	}
}

// TestCRIOArchive builds a checkpoint archive as CRI-O writes it (cri-o
// internal/lib/checkpoint.go, prepareCheckpointExport and
// exportCheckpoint: stats-dump, dump.log, checkpoint/, config.dump,
// spec.dump, bind.mounts, then rootfs-diff.tar, deleted.files and the log
// under the member named io.kubernetes.cri-o.LogPath) from the real images
// of before.tar.
func TestCRIOArchive(t *testing.T) {
	before := intrusionBefore(t)
	images := filepath.Join(before, "checkpoint")
	tmp := t.TempDir()
	arch := filepath.Join(tmp, "checkpoint-intr-pod_shop-web-2026-12-02T13:56:40Z.tar")
	labels, _ := json.Marshal(map[string]string{"io.kubernetes.container.name": "web", "io.kubernetes.pod.name": "intr-pod", "io.kubernetes.pod.namespace": "shop"})
	ann := map[string]string{
		"io.container.manager":            "cri-o",
		"io.kubernetes.cri-o.Labels":      string(labels),
		"io.kubernetes.cri-o.ImageName":   "localhost/intrusion-web:visible",
		"io.kubernetes.cri-o.IP.0":        "10.85.0.7",
		"io.kubernetes.cri-o.LogPath":     "/var/log/pods/shop_intr-pod_uid/web/0.log",
		"io.kubernetes.cri-o.Created":     "2026-12-02T13:55:54.90713518Z",
		"io.kubernetes.cri-o.ContainerID": "c0ffee",
	}
	spec, _ := json.Marshal(map[string]any{"ociVersion": "1.0.2", "hostname": "intr-pod", "annotations": ann})
	config := `{"id":"c0ffee","name":"k8s_web_intr-pod_shop_uid_0","rootfsImage":"localhost/intrusion-web:visible",` +
		`"rootfsImageRef":"4b1e1e0f0e5e","rootfsImageName":"localhost/intrusion-web:visible","runtime":"runc",` +
		`"createdTime":"2026-12-02T13:55:54.90713518Z","checkpointedTime":"2026-12-02T13:56:40Z"}`
	bind := `[{"source":"/var/lib/kubelet/pods/uid/etc-hosts","destination":"/etc/hosts","file_type":"file","permissions":420},` +
		`{"source":"/var/lib/kubelet/pods/uid/volumes/data","destination":"/data","file_type":"directory","permissions":493}]`
	engineTar(t, arch, images, []tarMember{
		{"stats-dump", fileBytes(t, filepath.Join(before, "stats-dump"))},
		{"dump.log", []byte("(00.000000) Dumping finished successfully\n")},
		{"checkpoint/", nil},
		{"config.dump", []byte(config)},
		{"spec.dump", spec},
		{"bind.mounts", []byte(bind)},
		{"rootfs-diff.tar", rwLayer(t, before, false)},
		{"deleted.files", []byte(`["/etc/group","/www/hosts.txt"]`)},
		{"io.kubernetes.cri-o.LogPath", []byte("2026-12-02T13:55:55Z stdout F x\n")},
	})
	rep := engineReport(t, arch)
	c := rep.Container
	if c == nil {
		t.Fatalf("no container; warnings %q", rep.Warnings)
	}
	if c.Engine != "CRI-O" || c.Name != "web" || c.Pod != "intr-pod" || c.Namespace != "shop" || !slices.Contains(c.IPs, "10.85.0.7") {
		t.Errorf("container %+v", c)
	}
	if c.LogPath != "/var/log/pods/shop_intr-pod_uid/web/0.log" || !slices.Contains(c.Logs, inspect.LogFile{Member: "io.kubernetes.cri-o.LogPath", Size: 32}) {
		t.Errorf("log path %q, logs %+v", c.LogPath, c.Logs)
	}
	want := []inspect.BindMount{
		{Source: "/var/lib/kubelet/pods/uid/etc-hosts", Destination: "/etc/hosts", Type: "file", Permissions: "0644"},
		{Source: "/var/lib/kubelet/pods/uid/volumes/data", Destination: "/data", Type: "directory", Permissions: "0755"},
	}
	if !slices.Equal(c.BindMounts, want) {
		t.Errorf("bind mounts %+v, want %+v", c.BindMounts, want)
	}
	for _, p := range []string{"etc/group", "www/hosts.txt"} {
		if d, ok := diffOf(rep, p); !ok || d.Type != "deleted" {
			t.Errorf("%s: %+v, %v; want deleted (deleted.files)", p, d, ok)
		}
	}
	checkUTS(t, rep)
	sameCores(t, arch, images)
}

// TestPodmanNetwork checks network.status of the real Podman export
// before.tar in full (README: Podman's default bridge network, netavark,
// 10.88.0.11; the MAC and gateway are the file's), and that a damaged or
// empty network.status costs the network and a warning naming it, never
// the container.
func TestPodmanNetwork(t *testing.T) {
	rep := engineReport(t, filepath.Join(intrusionDir, "before.tar"))
	c := rep.Container
	if c == nil || c.Engine != "Podman" || c.Name != "intr-web" {
		t.Fatalf("container %+v", c)
	}
	want := []inspect.Network{{Network: "podman", Interface: "eth0", IP: "10.88.0.11/16", MAC: "1a:44:6c:e2:b0:4e", Gateway: "10.88.0.1"}}
	if !slices.Equal(c.Networks, want) {
		t.Errorf("networks %+v, want %+v", c.Networks, want)
	}
	checkUTS(t, rep)
	// The sizes, as checkpointctl computes them: the files of checkpoint/,
	// the pages files among them, rootfs-diff.tar; counted here from the
	// archive's members.
	var ckpt, pages, diff int64
	f, err := os.Open(filepath.Join(intrusionDir, "before.tar"))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		switch name := h.Name; {
		case strings.HasPrefix(name, "checkpoint/") && h.Typeflag == tar.TypeReg:
			ckpt += h.Size
			if b := filepath.Base(name); strings.HasPrefix(b, "pages-") && strings.HasSuffix(b, ".img") {
				pages += h.Size
			}
		case name == "rootfs-diff.tar":
			diff = h.Size
		}
	}
	f.Close()
	if want := (inspect.Sizes{CheckpointBytes: ckpt, MemoryPagesBytes: pages, RootfsDiffBytes: diff}); rep.Sizes == nil || *rep.Sizes != want {
		t.Errorf("sizes %+v, want %+v", rep.Sizes, want)
	}
	code, stdout, _ := convertCLI(t, "inspect", filepath.Join(intrusionDir, "before.tar"))
	if code != exitOK || !strings.Contains(stdout, "podman: eth0 10.88.0.11/16 mac 1a:44:6c:e2:b0:4e gateway 10.88.0.1") {
		t.Errorf("text: exit %d, no network line in\n%s", code, stdout)
	}

	for name, content := range map[string]string{"damaged": `{"podman": {"interfaces": `, "empty": `{}`} {
		t.Run(name, func(t *testing.T) {
			dir := intrusionBefore(t)
			if err := os.WriteFile(filepath.Join(dir, "network.status"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			rep := engineReport(t, dir)
			if rep.Container == nil || rep.Container.Name != "intr-web" || len(rep.Container.Networks) != 0 {
				t.Fatalf("container %+v", rep.Container)
			}
			found := false
			for _, w := range rep.Warnings {
				found = found || strings.Contains(w, "network.status")
			}
			if !found {
				t.Errorf("no warning naming network.status in %q", rep.Warnings)
			}
		})
	}
}
