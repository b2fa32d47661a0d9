package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// TestPodCheckpointImage: cri-o's PodCheckpoint to a target that is not a
// local file (cri-o pull request 9758 at 98aa79498c, internal/lib/
// checkpoint.go) writes the same tree into a buildah container from
// scratch and commits it squashed, the org.criu.checkpoint.* annotations
// on the image: one layer. Exported (as podman save or skopeo would) as an
// OCI layout directory, an oci-archive and a docker-archive, it reads as
// the tar does: both containers listed, cores byte-identical to the image
// directories', grep names the container. A single container's
// checkpoint image reads as its archive.
func TestPodCheckpointImage(t *testing.T) {
	before := intrusionBefore(t)
	tree := podTree(t, "")
	tmp := t.TempDir()
	layerTar := filepath.Join(tmp, "layer.tar")
	tarDir(t, tree, layerTar, "")
	b := fileBytes(t, layerTar)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{"org.criu.checkpoint.pod.name": "intr-pod", "org.criu.checkpoint.engine.name": "cri-o"}).(v1.Image)
	layoutDir := filepath.Join(tmp, "oci")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	ociArchive := filepath.Join(tmp, "pod-oci.tar")
	tarDir(t, layoutDir, ociArchive, "")
	dockerArchive := filepath.Join(tmp, "pod-docker.tar")
	ref, _ := name.NewTag("localhost/intr-pod-checkpoint:latest")
	if err := tarball.WriteToFile(dockerArchive, ref, img); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{layoutDir, ociArchive, dockerArchive} {
		t.Run(filepath.Base(arch), func(t *testing.T) {
			code, stdout, stderr := convertCLI(t, "inspect", "--json", arch)
			if code != exitOK {
				t.Fatalf("inspect: exit %d: %s", code, stderr)
			}
			var rep inspect.PodReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Pod.Name != "intr-pod" || len(rep.Containers) != 2 || rep.Containers[1].Report == nil {
				t.Fatalf("pod %+v, containers %+v", rep.Pod, rep.Containers)
			}
			out := filepath.Join(t.TempDir(), "out")
			if code, _, stderr := convertCLI(t, arch, "-o", out); code != exitOK {
				t.Fatalf("convert: exit %d: %s", code, stderr)
			}
			convertSame(t, filepath.Join(out, "web"), filepath.Join(before, "checkpoint"))
			convertSame(t, filepath.Join(out, "counter"), filepath.Join(counterDir, "images"))
			code, stdout, _ = convertCLI(t, "grep", "RANDOM_1432_KEY", arch)
			if code != grepFound || !strings.HasPrefix(stdout, "counter 3760 ") {
				t.Errorf("grep: exit %d, %q", code, stdout)
			}
		})
	}
	// A single container's checkpoint as an image (its one layer: the
	// real Podman export before.tar): read as the archive.
	bt := fileBytes(t, filepath.Join(intrusionDir, "before.tar"))
	one, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(bt)), nil })
	if err != nil {
		t.Fatal(err)
	}
	cimg, err := mutate.AppendLayers(empty.Image, one)
	if err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(tmp, "ctr-docker.tar")
	if err := tarball.WriteToFile(single, ref, cimg); err != nil {
		t.Fatal(err)
	}
	sameCores(t, single, filepath.Join(before, "checkpoint"))
	// An image that is not a checkpoint: the image's own error.
	code, _, stderr := convertCLI(t, filepath.Join(intrusionDir, "image-oci.tar"), "-o", filepath.Join(tmp, "x"))
	if code != exitFailed || !strings.Contains(stderr, "is a container image, its layer no checkpoint") {
		t.Errorf("convert of the intrusion image: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(tmp, "x")); err == nil {
		t.Error("OUT made for an image that is no checkpoint")
	}
}
