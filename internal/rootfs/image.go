package rootfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Image is a container image opened by OpenImage: a docker-archive tar
// (docker save, podman save --format docker-archive), an oci-archive tar
// (podman save --format oci-archive) or an OCI image layout directory.
type Image struct {
	// Format is "docker-archive", "oci-archive" or "oci-layout".
	Format string
	// Names are the image's names (RepoTags, or the OCI index's
	// org.opencontainers.image.ref.name annotations).
	Names []string
	// ID is the digest of the image's config (what Podman and Docker call
	// the image ID), Digest the digest of its manifest.
	ID, Digest string

	img v1.Image
	f   *os.File
}

// Close releases the image's archive.
func (i *Image) Close() error {
	if i.f != nil {
		return i.f.Close()
	}
	return nil
}

// OpenImage opens the image at p, told by content: a directory with an
// oci-layout file, a tar with manifest.json (docker-archive) or with
// index.json and oci-layout (oci-archive). An index of several images is
// refused (it names them).
func OpenImage(p string) (*Image, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		idx, err := layout.ImageIndexFromPath(p)
		if err != nil {
			return nil, fmt.Errorf("%s: not an OCI image layout: %w", p, err)
		}
		return fromIndex(p, "oci-layout", idx, nil)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	members, err := indexTar(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	switch {
	case members["manifest.json"] != nil:
		img, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(f, 0, 1<<62)), nil }, nil)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: docker-archive: %w", p, err)
		}
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(f, 0, 1<<62)), nil })
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: docker-archive: %w", p, err)
		}
		i := &Image{Format: "docker-archive", img: img, f: f}
		if len(m) > 1 {
			f.Close()
			return nil, fmt.Errorf("%s: docker-archive of %d images: only one is supported", p, len(m))
		}
		if len(m) == 1 {
			i.Names = m[0].RepoTags
		}
		return i.fill(p)
	case members["index.json"] != nil && members["oci-layout"] != nil:
		blob := func(h v1.Hash) (*io.SectionReader, error) {
			m := members["blobs/"+h.Algorithm+"/"+h.Hex]
			if m == nil {
				return nil, fmt.Errorf("blob %s: not in the archive", h)
			}
			return io.NewSectionReader(f, m.off, m.size), nil
		}
		raw, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, members["index.json"].off, members["index.json"].size), 16<<20))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: index.json: %w", p, err)
		}
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: index.json: %w", p, err)
		}
		i, err := fromIndexManifest(p, "oci-archive", im, func(d v1.Descriptor) (v1.Image, error) {
			return partial.CompressedToImage(&archiveImage{blob: blob, desc: d})
		})
		if err != nil {
			f.Close()
			return nil, err
		}
		i.f = f
		return i, nil
	}
	f.Close()
	return nil, fmt.Errorf("%s: not a docker-archive or oci-archive tar (no manifest.json, nor index.json and oci-layout)", p)
}

func fromIndex(p, format string, idx v1.ImageIndex, f *os.File) (*Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", p, err)
	}
	return fromIndexManifest(p, format, im, func(d v1.Descriptor) (v1.Image, error) { return idx.Image(d.Digest) })
}

func fromIndexManifest(p, format string, im *v1.IndexManifest, image func(v1.Descriptor) (v1.Image, error)) (*Image, error) {
	var imgs []v1.Descriptor
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() {
			imgs = append(imgs, d)
		}
	}
	if len(imgs) != 1 {
		return nil, fmt.Errorf("%s: %s with %d images: only one is supported", p, format, len(imgs))
	}
	img, err := image(imgs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", p, format, err)
	}
	i := &Image{Format: format, img: img}
	if n := imgs[0].Annotations["org.opencontainers.image.ref.name"]; n != "" {
		i.Names = []string{n}
	}
	return i.fill(p)
}

func (i *Image) fill(p string) (*Image, error) {
	id, err := i.img.ConfigName()
	if err != nil {
		i.Close()
		return nil, fmt.Errorf("%s: %s: config: %w", p, i.Format, err)
	}
	dg, err := i.img.Digest()
	if err != nil {
		i.Close()
		return nil, fmt.Errorf("%s: %s: manifest: %w", p, i.Format, err)
	}
	i.ID, i.Digest = id.String(), dg.String()
	return i, nil
}

// Matches says whether the image is the one a checkpoint's config.dump
// names: by ID (rootfsImageID), by digest reference (rootfsImageRef,
// NAME@sha256:... or sha256:...), else by name (rootfsImageName). Empty
// arguments are not compared; all empty matches.
func (i *Image) Matches(imageName, imageID, imageRef string) bool {
	hexOf := func(s string) string { return strings.TrimPrefix(s[strings.LastIndex(s, "@")+1:], "sha256:") }
	if imageID != "" || imageRef != "" {
		for _, s := range []string{imageID, imageRef} {
			if s != "" && (hexOf(s) == hexOf(i.ID) || hexOf(s) == hexOf(i.Digest)) {
				return true
			}
		}
		return false
	}
	if imageName == "" {
		return true
	}
	want, err := name.ParseReference(imageName)
	for _, n := range i.Names {
		if n == imageName {
			return true
		}
		if got, err2 := name.ParseReference(n); err == nil && err2 == nil && got.Name() == want.Name() {
			return true
		}
	}
	return false
}

// archiveImage is one image of an oci-archive tar, its blobs read in place.
type archiveImage struct {
	blob func(v1.Hash) (*io.SectionReader, error)
	desc v1.Descriptor
	man  *v1.Manifest
}

func (a *archiveImage) readBlob(h v1.Hash, max int64) ([]byte, error) {
	r, err := a.blob(h)
	if err != nil {
		return nil, err
	}
	if r.Size() > max {
		return nil, fmt.Errorf("blob %s: %d bytes, more than %d", h, r.Size(), max)
	}
	return io.ReadAll(r)
}

func (a *archiveImage) RawManifest() ([]byte, error) { return a.readBlob(a.desc.Digest, 16<<20) }
func (a *archiveImage) MediaType() (types.MediaType, error) {
	return a.desc.MediaType, nil
}
func (a *archiveImage) manifest() (*v1.Manifest, error) {
	if a.man != nil {
		return a.man, nil
	}
	raw, err := a.RawManifest()
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	a.man = m
	return m, nil
}
func (a *archiveImage) RawConfigFile() ([]byte, error) {
	m, err := a.manifest()
	if err != nil {
		return nil, err
	}
	return a.readBlob(m.Config.Digest, 16<<20)
}
func (a *archiveImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := a.manifest()
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if l.Digest == h {
			r, err := a.blob(h)
			if err != nil {
				return nil, err
			}
			return &archiveLayer{r: r, desc: l}, nil
		}
	}
	if m.Config.Digest == h {
		r, err := a.blob(h)
		if err != nil {
			return nil, err
		}
		return &archiveLayer{r: r, desc: m.Config}, nil
	}
	return nil, fmt.Errorf("blob %s: not in the manifest", h)
}

type archiveLayer struct {
	r    *io.SectionReader
	desc v1.Descriptor
}

func (l *archiveLayer) Digest() (v1.Hash, error) { return l.desc.Digest, nil }
func (l *archiveLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(l.r, 0, l.r.Size())), nil
}
func (l *archiveLayer) Size() (int64, error)                { return l.r.Size(), nil }
func (l *archiveLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

type tarMember struct{ off, size int64 }

// indexTar lists the regular members of a tar (their data offsets), at
// most 1<<16 of them.
func indexTar(f *os.File) (map[string]*tarMember, error) {
	cr := &countReader{r: f}
	tr := tar.NewReader(cr)
	out := map[string]*tarMember{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar: %w", err)
		}
		if len(out) >= 1<<16 {
			return nil, errors.New("more than 65536 members: refused")
		}
		if h.Typeflag == tar.TypeReg {
			out[path.Clean("/" + h.Name)[1:]] = &tarMember{off: cr.n, size: h.Size}
		}
	}
}

// MappedPaths returns the paths of the regular files the processes of ck
// map (executables, libraries, mapped data files), cleaned, without the
// leading "/".
func MappedPaths(ck *criuimg.Checkpoint) map[string]bool {
	want := map[string]bool{}
	for _, pid := range ck.Pids() {
		p, _ := ck.SalvageProcess(pid)
		if p == nil {
			continue
		}
		for i := range p.VMAs {
			if id := p.VMAs[i].FileID; id != 0 {
				if rf, ok := ck.RegFile(id); ok && rf.Path != "" {
					want[path.Clean("/" + rf.Path)[1:]] = true
				}
			}
		}
		p.Close()
	}
	return want
}

// Materialize writes into dir (which must exist, and be private) the
// files of the image's flattened file system (its layers applied in
// order, whiteouts honoured, as go-containerregistry's mutate.Extract
// gives it) that want names, and every symbolic link of the image (with
// an absolute target made relative to dir, so that it never leaves it), so
// that dir serves as a sysroot. Nothing else of the image is written. It
// returns the paths written.
func (i *Image) Materialize(dir string, want map[string]bool) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	rc := mutate.Extract(i.img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var written []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, fmt.Errorf("image %s: %w", i.Format, err)
		}
		n := path.Clean("/" + h.Name)[1:]
		if n == "" || len(n) > maxNameLen {
			continue
		}
		switch {
		case h.Typeflag == tar.TypeSymlink:
			// Resolved as in a chroot at dir (a rooted path cannot climb
			// above /), then made relative: no link leaves dir, whatever
			// the image says.
			abs := path.Clean(h.Linkname)
			if !strings.HasPrefix(abs, "/") {
				abs = path.Join("/"+path.Dir(n), h.Linkname)
			}
			target, err := filepath.Rel(path.Dir("/"+n), abs)
			if err != nil {
				continue
			}
			if err := mkdirs(root, path.Dir(n)); err != nil {
				return written, err
			}
			if err := root.Symlink(target, n); err != nil && !errors.Is(err, os.ErrExist) {
				return written, fmt.Errorf("%s: %w", n, err)
			}
		case h.Typeflag == tar.TypeReg && want[n]:
			if err := mkdirs(root, path.Dir(n)); err != nil {
				return written, err
			}
			f, err := root.OpenFile(n, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return written, fmt.Errorf("%s: %w", n, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return written, fmt.Errorf("%s: %w", n, err)
			}
			written = append(written, n)
		}
	}
}

// mkdirs makes dir and its parents under root (mode 0700).
func mkdirs(root *os.Root, dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	var cur string
	for _, p := range strings.Split(dir, "/") {
		cur = path.Join(cur, p)
		if err := root.Mkdir(cur, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", cur, err)
		}
	}
	return nil
}
