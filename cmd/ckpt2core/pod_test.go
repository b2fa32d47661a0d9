package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// The two containers of the test pod: the intrusion fixture's web
// container (the real images of before.tar) and the counter fixture's
// processes (its real images) as a second container.
const (
	podWebID     = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
	podCounterID = "f9e8d7c6b5a40392817f6e5d4c3b2a1f09e8d7c6b5a40392817f6e5d4c3b2a1f0"
	podWebDir    = podWebID + "-k8s_web_intr-pod_shop_5f0c2a47-uid_0"
	podCountDir  = podCounterID + "-k8s_counter_intr-pod_shop_5f0c2a47-uid_0"
	counterDir   = "../../testdata/x86_64/counter"
)

// podTree lays out, in a new directory, what cri-o's PodCheckpoint
// (cri-o pull request 9758 at 98aa79498c587b60ee3f57033f15c2b89304f060,
// internal/lib/checkpoint.go: PodCheckpoint and
// writePodCheckpointMetadata) writes before it tars the directory: for
// each container a directory "<id>-<name>" filled by ContainerCheckpoint
// with WorkPath and CheckpointPath there (prepareCheckpointExport:
// spec.dump, config.dump, bind.mounts; CRIU: checkpoint/; dump.log and
// stats-dump copied; exportCheckpoint: rootfs-diff.tar, deleted.files and
// the log under io.kubernetes.cri-o.LogPath), then pod.options
// (checkpointctl's CheckpointedPodOptions: version 1, containers: the
// Kubernetes name -> the directory, annotations). podOptions replaces
// pod.options when not "".
func podTree(t *testing.T, podOptions string) string {
	t.Helper()
	before := intrusionBefore(t)
	dir := t.TempDir()
	container := func(sub, name, images string, rootfs []byte) {
		d := filepath.Join(dir, sub)
		if err := os.MkdirAll(filepath.Join(d, "checkpoint"), 0o700); err != nil {
			t.Fatal(err)
		}
		ents, err := os.ReadDir(images)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".img") {
				writeFile(t, filepath.Join(d, "checkpoint", e.Name()), fileBytes(t, filepath.Join(images, e.Name())))
			}
		}
		id, _, _ := strings.Cut(sub, "-")
		ann := map[string]string{"io.container.manager": "cri-o", "io.kubernetes.cri-o.ContainerID": id, "io.kubernetes.cri-o.LogPath": "/var/log/pods/shop_intr-pod_uid/" + name + "/0.log",
			"io.kubernetes.cri-o.IP.0": "10.85.0.9"}
		labels, _ := json.Marshal(map[string]string{"io.kubernetes.container.name": name, "io.kubernetes.pod.name": "intr-pod", "io.kubernetes.pod.namespace": "shop"})
		ann["io.kubernetes.cri-o.Labels"] = string(labels)
		spec, _ := json.Marshal(map[string]any{"ociVersion": "1.0.2", "hostname": "intr-pod", "annotations": ann})
		writeFile(t, filepath.Join(d, "spec.dump"), spec)
		writeFile(t, filepath.Join(d, "config.dump"), []byte(`{"id":"`+id+`","name":"k8s_`+name+`_intr-pod_shop_uid_0","rootfsImage":"localhost/`+name+`:1","runtime":"runc","createdTime":"2026-12-02T13:55:54Z","checkpointedTime":"2026-12-02T13:56:40Z"}`))
		writeFile(t, filepath.Join(d, "dump.log"), []byte("(00.000000) Dumping finished successfully\n"))
		writeFile(t, filepath.Join(d, "stats-dump"), fileBytes(t, filepath.Join(before, "stats-dump")))
		if rootfs != nil {
			writeFile(t, filepath.Join(d, "rootfs-diff.tar"), rootfs)
		}
		writeFile(t, filepath.Join(d, "deleted.files"), []byte(`["/etc/group"]`))
		writeFile(t, filepath.Join(d, "io.kubernetes.cri-o.LogPath"), []byte("2026-12-02T13:55:55Z stdout F "+name+"\n"))
	}
	container(podWebDir, "web", filepath.Join(before, "checkpoint"), fileBytes(t, filepath.Join(before, "rootfs-diff.tar")))
	container(podCountDir, "counter", filepath.Join(counterDir, "images"), nil)
	if podOptions == "" {
		podOptions = `{"version":1,"containers":{"web":"` + podWebDir + `","counter":"` + podCountDir + `"},"annotations":{` +
			`"org.criu.checkpoint.engine.name":"cri-o","org.criu.checkpoint.engine.version":"1.36.0",` +
			`"org.criu.checkpoint.pod.name":"intr-pod","org.criu.checkpoint.pod.id":"5a5a5a5a","org.criu.checkpoint.pod.namespace":"shop",` +
			`"org.criu.checkpoint.pod.uid":"5f0c2a47-uid"}}`
	}
	writeFile(t, filepath.Join(dir, "pod.options"), []byte(podOptions))
	return dir
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tarDir writes dir as containers/storage's archive.TarWithOptions with
// IncludeSourceDir writes it (what PodCheckpoint calls): "./" first, then
// every file and directory in filepath.Walk's (lexical) order, names
// relative to dir, directories with a trailing "/". comp is "", "gzip" or
// "zstd" (the whole stream compressed, as a user may store it).
func tarDir(t *testing.T, dir, out, comp string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(dir, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o600, Typeflag: tar.TypeReg, Size: info.Size()}
		if info.IsDir() {
			h = &tar.Header{Name: filepath.ToSlash(rel) + "/", Mode: 0o700, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.IsDir() {
			_, err = tw.Write(fileBytes(t, p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	switch comp {
	case "gzip":
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		b = z.Bytes()
	case "zstd":
		var z bytes.Buffer
		zw, _ := zstd.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		b = z.Bytes()
	}
	writeFile(t, out, b)
}

// podArchive builds the test pod checkpoint as a plain tar and returns
// its path.
func podArchive(t *testing.T, podOptions string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "pod-checkpoint.tar")
	tarDir(t, podTree(t, podOptions), out, "")
	return out
}

// convertSame converts the images directory and checks the cores in got
// are byte-identical to its.
func convertSame(t *testing.T, got, images string) {
	t.Helper()
	want := filepath.Join(t.TempDir(), "want")
	if code, _, stderr := convertCLI(t, images, "-o", want); code != exitOK {
		t.Fatalf("convert %s: exit %d: %s", images, code, stderr)
	}
	cw, cg := coresIn(t, want), coresIn(t, got)
	if len(cw) == 0 || len(cw) != len(cg) {
		t.Fatalf("%s: %d cores, the directory gives %d", got, len(cg), len(cw))
	}
	for n, b := range cw {
		if !bytes.Equal(b, cg[n]) {
			t.Errorf("%s/%s differs from the directory's", got, n)
		}
	}
}

// TestPodCheckpoint: a CRI-O pod checkpoint (KEP-5823 layout, see podTree)
// as plain tar, gzip and zstd: inspect lists both containers with the
// pod's facts; convert writes OUT/<container>/core.N byte-identical to
// each container's image directory; --container chooses one.
func TestPodCheckpoint(t *testing.T) {
	before := intrusionBefore(t)
	webImages := filepath.Join(before, "checkpoint")
	counterImages := filepath.Join(counterDir, "images")
	tree := podTree(t, "")
	tmp := t.TempDir()
	for _, comp := range []string{"", "gzip", "zstd"} {
		t.Run("tar+"+comp, func(t *testing.T) {
			arch := filepath.Join(tmp, "pod"+comp+".tar")
			tarDir(t, tree, arch, comp)
			code, stdout, stderr := convertCLI(t, "inspect", "--json", arch)
			if code != exitOK {
				t.Fatalf("inspect: exit %d: %s", code, stderr)
			}
			var rep inspect.PodReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			p := rep.Pod
			if p.Name != "intr-pod" || p.Namespace != "shop" || p.UID != "5f0c2a47-uid" || p.ID != "5a5a5a5a" || p.Engine != "cri-o" || p.Layout != "directories" || p.Version != 1 {
				t.Errorf("pod %+v", p)
			}
			if len(rep.Containers) != 2 || rep.Containers[0].Name != "counter" || rep.Containers[1].Name != "web" {
				t.Fatalf("containers %+v", rep.Containers)
			}
			// Each container's processes: the fixtures' (counter: its
			// manifest's pids; web: before.tar's pstree as the directory
			// gives it).
			pids := func(r *inspect.Report) []int {
				var out []int
				for _, pr := range r.Processes {
					out = append(out, int(pr.Pid))
				}
				return out
			}
			for _, c := range rep.Containers {
				if c.Report == nil || c.Error != "" {
					t.Fatalf("container %s: %q", c.Name, c.Error)
				}
				if c.Report.Container == nil || c.Report.Container.Engine != "CRI-O" || c.Report.Container.Name != c.Name || c.Report.Container.Pod != "intr-pod" {
					t.Errorf("container %s: %+v", c.Name, c.Report.Container)
				}
			}
			if got := pids(rep.Containers[0].Report); !slices.Equal(got, []int{3757, 3760, 3761}) {
				t.Errorf("counter pids %v, manifest has 3757, 3760, 3761", got)
			}
			if got, want := pids(rep.Containers[1].Report), pids(engineReport(t, webImages)); !slices.Equal(got, want) || len(want) == 0 {
				t.Errorf("web pids %v, the directory's %v", got, want)
			}
			if d, ok := diffOf(rep.Containers[1].Report, "etc/group"); !ok || d.Type != "deleted" {
				t.Errorf("web: etc/group %+v %v; want deleted (its deleted.files)", d, ok)
			}
			code, stdout, _ = convertCLI(t, "inspect", arch)
			for _, s := range []string{"Pod:           intr-pod (namespace shop, uid 5f0c2a47-uid)", "=== Container web (" + podWebDir + ")", "=== Container counter ("} {
				if code != exitOK || !strings.Contains(stdout, s) {
					t.Errorf("inspect text: exit %d, no %q", code, s)
				}
			}

			out := filepath.Join(tmp, "out"+comp)
			if code, _, stderr := convertCLI(t, arch, "-o", out); code != exitOK {
				t.Fatalf("convert: exit %d: %s", code, stderr)
			}
			convertSame(t, filepath.Join(out, "web"), webImages)
			convertSame(t, filepath.Join(out, "counter"), counterImages)
			ents, _ := os.ReadDir(out)
			if len(ents) != 2 {
				t.Errorf("OUT holds %d entries, want web/ and counter/", len(ents))
			}
			one := filepath.Join(tmp, "one"+comp)
			if code, _, stderr := convertCLI(t, arch, "-o", one, "--container", podCounterID[:12]); code != exitOK {
				t.Fatalf("convert --container: exit %d: %s", code, stderr)
			}
			convertSame(t, one, counterImages)
		})
	}
	// An extracted pod checkpoint (the directory itself).
	code, stdout, stderr := convertCLI(t, "inspect", "--json", tree)
	if code != exitOK || !strings.Contains(stdout, `"directory": "`+podWebDir+`"`) {
		t.Errorf("inspect of the directory: exit %d: %s", code, stderr)
	}
	out := filepath.Join(tmp, "fromdir")
	if code, _, stderr := convertCLI(t, tree, "-o", out, "--container", "web"); code != exitOK {
		t.Fatalf("convert dir --container web: exit %d: %s", code, stderr)
	}
	convertSame(t, out, webImages)
}

// TestPodGrepAndDebuggers: grep searches every container and names it in
// each hit (the counter manifest's RANDOM_1432_KEY, pid 3760, only in
// counter); gdb and dlv refuse a pod checkpoint without --container,
// naming its containers; --container is a usage error on another
// checkpoint and for an unknown name.
func TestPodGrepAndDebuggers(t *testing.T) {
	arch := podArchive(t, "")
	code, stdout, stderr := convertCLI(t, "grep", "--json", "RANDOM_1432_KEY", arch)
	if code != grepFound {
		t.Fatalf("grep: exit %d: %s", code, stderr)
	}
	var hits []struct {
		Container, Address string
		Pid                int
	}
	if err := json.Unmarshal([]byte(stdout), &hits); err != nil {
		t.Fatalf("grep --json: %v\n%s", err, stdout)
	}
	found := false
	for _, h := range hits {
		if h.Container != "counter" || h.Pid != 3760 {
			t.Errorf("hit %+v: want container counter, pid 3760", h)
		}
		found = found || h.Address == "0x7f6d0fb6fbad"
	}
	if !found {
		t.Errorf("no hit at 0x7f6d0fb6fbad (manifest) in %+v", hits)
	}
	code, stdout, _ = convertCLI(t, "grep", "RANDOM_1432_KEY", arch)
	if code != grepFound || !strings.HasPrefix(stdout, "counter 3760 ") {
		t.Errorf("grep text: exit %d, %q", code, stdout)
	}
	code, stdout, _ = convertCLI(t, "grep", "--container", "web", "RANDOM_1432_KEY", arch)
	if code != grepNone || stdout != "" {
		t.Errorf("grep --container web: exit %d, %q; want no hit", code, stdout)
	}
	for _, tool := range []string{"gdb", "dlv"} {
		code, _, stderr := convertCLI(t, tool, arch)
		if code != exitUsage || !strings.Contains(stderr, "pod checkpoint of 2 containers (counter, web)") || !strings.Contains(stderr, "--container") {
			t.Errorf("%s on a pod: exit %d, %q", tool, code, stderr)
		}
	}
	code, _, stderr = convertCLI(t, filepath.Join(intrusionDir, "before.tar"), "-o", t.TempDir(), "--container", "web")
	if code != exitUsage || !strings.Contains(stderr, "not a pod checkpoint") {
		t.Errorf("--container on before.tar: exit %d, %q", code, stderr)
	}
	code, _, stderr = convertCLI(t, "gdb", "--container", "db", arch)
	if code != exitUsage || !strings.Contains(stderr, "no such container") || !strings.Contains(stderr, "counter, web") {
		t.Errorf("--container db: exit %d, %q", code, stderr)
	}
}

// TestPodHostile: a pod.options naming a container the archive lacks
// costs that container only (named; the other is converted: exit 3); a
// container named twice, and directories that leave the archive's tree,
// are refused with an error naming them; nothing is written outside OUT.
func TestPodHostile(t *testing.T) {
	missing := `{"version":1,"containers":{"web":"` + podWebDir + `","ghost":"0000-k8s_ghost"}}`
	arch := podArchive(t, missing)
	root := t.TempDir()
	out := filepath.Join(root, "out")
	code, _, stderr := convertCLI(t, arch, "-o", out)
	if code != exitPartial || !strings.Contains(stderr, `container ghost`) || !strings.Contains(stderr, "0000-k8s_ghost") {
		t.Errorf("missing container: exit %d, %q", code, stderr)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 1 {
		t.Errorf("%d entries beside OUT", len(ents)-1)
	}
	if _, err := os.Stat(filepath.Join(out, "web")); err != nil {
		t.Errorf("web not converted: %v", err)
	}
	code, stdout, _ := convertCLI(t, "inspect", "--json", arch)
	if code != exitFailed || !strings.Contains(stdout, `"unlisted": [`) || !strings.Contains(stdout, podCountDir) {
		t.Errorf("inspect: exit %d; want 1 and counter's directory unlisted", code)
	}
	for _, tc := range []struct{ name, options, want string }{
		{"duplicate", `{"version":1,"containers":{"web":"` + podWebDir + `","web":"` + podCountDir + `"}}`, `"web" named twice`},
		{"same directory", `{"version":1,"containers":{"web":"` + podWebDir + `","web2":"` + podWebDir + `"}}`, "given to two containers"},
		{"dotdot", `{"version":1,"containers":{"web":"../../etc"}}`, `directory "../../etc": has a path separator`},
		{"dotdot name", `{"version":1,"containers":{"..":"` + podWebDir + `"}}`, `container name "..": not a file name`},
		{"slash name", `{"version":1,"containers":{"a/../../x":"` + podWebDir + `"}}`, `has a path separator`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arch := podArchive(t, tc.options)
			root := t.TempDir()
			out := filepath.Join(root, "out")
			code, _, stderr := convertCLI(t, arch, "-o", out)
			if code != exitFailed && code != exitUsage || !strings.Contains(stderr, "pod.options") || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, %q; want %q", code, stderr, tc.want)
			}
			if ents, _ := os.ReadDir(root); len(ents) != 0 {
				t.Errorf("%d entries written", len(ents))
			}
		})
	}
}

// TestPodCheckpointEarlierLayout: CRI-O's earlier pod checkpoint (cri-o
// server/container_checkpoint.go at 7a8f62f1b7^, CheckpointContainer with
// a pod id: pod.dump (the CRI PodSandboxConfig as JSON), each container's
// archive "<name>.tar" (ContainerCheckpoint with TargetFile in the pod
// directory), pod.options (version 1, the names as a list, mountLabel,
// processLabel), the directory tarred with IncludeSourceDir), plain and
// zstd: inspect shows pod.dump's pod and hostname and both containers;
// convert's cores equal each container's image directory's.
func TestPodCheckpointEarlierLayout(t *testing.T) {
	before := intrusionBefore(t)
	tree := podTree(t, "")
	legacy := t.TempDir()
	tarDir(t, filepath.Join(tree, podWebDir), filepath.Join(legacy, "web.tar"), "")
	tarDir(t, filepath.Join(tree, podCountDir), filepath.Join(legacy, "counter.tar"), "")
	writeFile(t, filepath.Join(legacy, "pod.dump"), []byte(`{"metadata":{"name":"intr-pod","uid":"5f0c2a47-uid","namespace":"shop","attempt":1},"hostname":"intr-host","log_directory":"/var/log/pods/shop_intr-pod_5f0c2a47-uid"}`))
	writeFile(t, filepath.Join(legacy, "pod.options"), []byte(`{"version":1,"containers":["web","counter"],"mountLabel":"","processLabel":""}`))
	tmp := t.TempDir()
	for _, comp := range []string{"", "zstd"} {
		arch := filepath.Join(tmp, "legacy"+comp+".tar")
		tarDir(t, legacy, arch, comp)
		code, stdout, stderr := convertCLI(t, "inspect", "--json", arch)
		if code != exitOK {
			t.Fatalf("inspect %s: exit %d: %s", comp, code, stderr)
		}
		var rep inspect.PodReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatal(err)
		}
		if p := rep.Pod; p.Name != "intr-pod" || p.Namespace != "shop" || p.UID != "5f0c2a47-uid" || p.Hostname != "intr-host" || p.Layout != "nested archives" {
			t.Errorf("pod %+v", p)
		}
		if len(rep.Containers) != 2 || rep.Containers[1].Name != "web" || rep.Containers[1].Report == nil || len(rep.Containers[1].Report.Processes) == 0 {
			t.Fatalf("containers %+v", rep.Containers)
		}
		out := filepath.Join(tmp, "out"+comp)
		if code, _, stderr := convertCLI(t, arch, "-o", out); code != exitOK {
			t.Fatalf("convert: exit %d: %s", code, stderr)
		}
		convertSame(t, filepath.Join(out, "web"), filepath.Join(before, "checkpoint"))
		convertSame(t, filepath.Join(out, "counter"), filepath.Join(counterDir, "images"))
		code, stdout, _ = convertCLI(t, "grep", "--container", "counter", "RANDOM_1432_KEY", arch)
		if code != grepFound || !strings.HasPrefix(stdout, "3760 ") {
			t.Errorf("grep --container counter: exit %d, %q", code, stdout)
		}
	}
}
