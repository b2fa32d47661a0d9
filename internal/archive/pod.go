package archive

// CRI-O pod-level checkpoints (KEP-5823).
//
// The layout is the one cri-o's PodCheckpoint writes (cri-o pull request
// 9758, commit 98aa79498c587b60ee3f57033f15c2b89304f060,
// internal/lib/checkpoint.go: PodCheckpoint, writePodCheckpointMetadata):
// one uncompressed tar (archive.TarWithOptions, IncludeSourceDir) of a
// directory holding, for every container of the pod, a directory named
// "<container id>-<container name>" laid out as a single container's
// checkpoint (checkpoint/, config.dump, spec.dump, bind.mounts, dump.log,
// stats-dump, rootfs-diff.tar, deleted.files, the log), and pod.options:
// checkpointctl's CheckpointedPodOptions (lib/metadata.go at checkpointctl
// 06e23e6d1f24) with "version", "containers" (the Kubernetes container
// name -> that directory) and "annotations" (org.criu.checkpoint.*: pod
// name, id, uid, namespace, engine, ...). pod.dump (a CRI
// PodSandboxConfig as JSON: metadata, hostname, log_directory, ...) is
// written by CRI-O's earlier proof of concept (cri-o before commit
// 7a8f62f1b7, server/container_checkpoint.go) and read when present; that
// proof of concept stored each container as a nested plain tar
// "<name>.tar" (a whole container checkpoint archive) listed in
// pod.options "containers" as a JSON array (Pod.Nested); such a container
// is opened in place inside a plain pod tar, or spooled into an anonymous
// file from a compressed one.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// The top-level files of a pod checkpoint (checkpointctl lib/metadata.go).
const (
	PodOptionsFile = "pod.options"
	PodDumpFile    = "pod.dump"
)

// PodError is the error Open returns for a pod checkpoint opened without
// Options.Container: the archive has pod.options at its top and its
// containers' images in directories below (ReadPod lists them).
type PodError struct{ Path string }

func (e *PodError) Error() string {
	return e.Path + ": a pod checkpoint (" + PodOptionsFile + "): its containers lie in directories; choose one"
}

// ErrNotCheckpoint is wrapped by Open's error for a tar archive without
// CRIU images: not a container checkpoint (maybe a container image
// holding one: see OpenFile).
var ErrNotCheckpoint = errors.New("not a container checkpoint")

// ErrNotPod is returned by ReadPod for a checkpoint that is not a pod
// checkpoint.
var ErrNotPod = errors.New("not a pod checkpoint (no " + PodOptionsFile + " at the top, or checkpoint/ images there)")

// within maps a cleaned member name into the container directory
// Options.Container: the name relative to it and true, or name and false
// for a member outside it. Without Options.Container every member is
// inside.
func (o Options) within(name string) (string, bool) {
	if o.Container == "" {
		return name, true
	}
	if name == o.Container {
		return "", true
	}
	if rel, ok := strings.CutPrefix(name, o.Container+"/"); ok {
		return rel, true
	}
	return name, false
}

// Pod is what ReadPod finds in a pod checkpoint.
type Pod struct {
	// Path is the path given to ReadPod.
	Path string
	// Kind is how the archive is stored (Checkpoint.Kind's values).
	Kind string
	// Version is pod.options' "version".
	Version int
	// Containers are the containers pod.options names, sorted by name.
	Containers []PodContainer
	// Unlisted are the directories with checkpoint/ images that
	// pod.options does not name, sorted.
	Unlisted []string
	// Annotations are pod.options' "annotations" (KEP-5823).
	Annotations map[string]string
	// MountLabel and ProcessLabel are pod.options' SELinux labels (the
	// earlier layout).
	MountLabel, ProcessLabel string
	// Sandbox is pod.dump, nil when the checkpoint has none.
	Sandbox *PodSandbox
	// Nested is true for the earlier layout: pod.options "containers" is
	// a list of names, each container a nested archive "<name>.tar".
	Nested bool
	// Notes are what ReadPod could not use, one sentence each naming the
	// file (a malformed pod.dump, ...).
	Notes []string
}

// PodContainer is one container of a pod checkpoint.
type PodContainer struct {
	// Name is the Kubernetes container name (the key in pod.options).
	Name string
	// Dir is the directory holding its checkpoint ("<id>-<name>"), or the
	// nested archive's name (Pod.Nested).
	Dir string
	// ID is the container id: Dir up to its first "-" ("" if Nested).
	ID string
	// Err says why the container cannot be read (its directory is missing
	// or has no images, its nested archive is missing); nil if it can.
	Err error
}

// PodSandbox is pod.dump: the CRI PodSandboxConfig CRI-O saved.
type PodSandbox struct {
	Name, UID, Namespace string
	Attempt              uint32
	Hostname             string
	LogDirectory         string
}

// Container returns the container whose name, directory or id (or a
// unique prefix of at least 12 characters of the id) is key.
func (p *Pod) Container(key string) (PodContainer, bool) {
	for _, c := range p.Containers {
		if c.Name == key || c.Dir == key || (c.ID != "" && c.ID == key) {
			return c, true
		}
	}
	if len(key) < 12 {
		return PodContainer{}, false
	}
	var hit []PodContainer
	for _, c := range p.Containers {
		if c.ID != "" && strings.HasPrefix(c.ID, key) {
			hit = append(hit, c)
		}
	}
	if len(hit) == 1 {
		return hit[0], true
	}
	return PodContainer{}, false
}

// Names returns the containers' names.
func (p *Pod) Names() []string {
	out := make([]string, len(p.Containers))
	for i, c := range p.Containers {
		out[i] = c.Name
	}
	return out
}

// nestedSuffix ends the name of a nested container archive of CRI-O's
// earlier pod layout ("<name>.tar"); a KEP-5823 directory
// ("<id>-<name>", a Kubernetes name being a DNS label) never ends so.
const nestedSuffix = ".tar"

// openNested opens the nested container archive opts.Container (a plain
// tar member of the pod archive at path, as CRI-O's earlier pod
// checkpoints store each container): in place when the pod archive is a
// plain tar, else spooled into an anonymous file first. Every member of
// the pod archive is validated on the way, the nested archive as a
// container checkpoint.
func openNested(path string, opts Options) (c *Checkpoint, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if c == nil || c.f != f {
			f.Close()
		}
	}()
	return openNestedFile(path, f, opts)
}

// tarOf reads the archive f (named path, compressed as comp) as a tar:
// in place (seeking over data it skips) when uncompressed, else through
// the decompressor, at most opts.MaxBytes. kind is the archive's Kind;
// closeDecomp releases the decompressor.
func tarOf(path string, f *os.File, comp compression, opts Options) (cr *countReader, tr *tar.Reader, kind string, closeDecomp func(), err error) {
	if comp == compNone {
		scr := &seekCountReader{countReader: countReader{r: f, limit: math.MaxInt64}, s: f}
		return &scr.countReader, tar.NewReader(scr), KindTar, func() {}, nil
	}
	r, kind, closeDecomp, err := decompress(path, f, comp, opts)
	if err != nil {
		return nil, nil, "", nil, err
	}
	cr = &countReader{r: r, limit: opts.MaxBytes}
	return cr, tar.NewReader(cr), kind, closeDecomp, nil
}

// openNestedFile is openNested on the open pod archive f; the
// Checkpoint's f is f when the nested archive is read in place.
func openNestedFile(path string, f *os.File, opts Options) (c *Checkpoint, err error) {
	name := opts.Container
	opts.Container = ""
	if opts.ExtractDir != "" {
		return nil, fmt.Errorf("%s: %s: extracting a nested container archive: not supported (extract the pod, then give %s)", path, name, name)
	}
	st, comp, err := sniffFile(path, f)
	if err != nil {
		return nil, err
	}
	cr, tr, kind, closeDecomp, err := tarOf(path, f, comp, opts)
	if err != nil {
		return nil, err
	}
	defer closeDecomp()
	fileSize := int64(-1)
	if comp == compNone {
		fileSize = st.Size()
	}
	var (
		inner     *os.File
		off, size int64
		found     bool
	)
	defer func() {
		if err != nil && inner != nil && inner != f {
			inner.Close()
		}
	}()
	_, err = scan(path, cr, tr, opts, fileSize, true, func(m *member) error {
		if m.name != name || m.hdr.Typeflag != tar.TypeReg {
			return nil
		}
		if found {
			return memberError(path, m.hdr.Name, "duplicate member (%q appears twice): refused", name)
		}
		found, size = true, m.hdr.Size
		if comp == compNone {
			inner, off = f, m.off
			return nil
		}
		af, err := newAnonFile(opts.TempDir)
		if err != nil {
			return memberError(path, m.hdr.Name, "%v", err)
		}
		inner = af
		if n, err := io.Copy(af, tr); err != nil || n != size {
			return memberError(path, m.hdr.Name, "truncated archive: declares %d bytes, the data ends after %d bytes (%v)", size, n, err)
		}
		return nil
	})
	var pe *PodError
	if err != nil && !errors.As(err, &pe) {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s: no member %q (the nested container archive): %w", path, name, fs.ErrNotExist)
	}
	where := path + ":" + name
	c, err = openInPlaceAt(where, inner, io.NewSectionReader(inner, off, size), off, size, opts)
	if err != nil {
		return nil, err
	}
	c.kind = kind
	return c, nil
}

// Locate returns what to open for container c of the pod at p.Path:
// the path and the Options.Container to open it with (an extracted pod:
// the container's directory, and "").
func (p *Pod) Locate(c PodContainer) (path, container string) {
	if p.Kind == KindDirectory {
		return filepath.Join(p.Path, c.Dir), ""
	}
	return p.Path, c.Dir
}

// ReadPod reads the pod checkpoint at path (an archive, plain or
// compressed, or an extracted directory): pod.options, pod.dump and which
// directories hold checkpoint/ images. It returns ErrNotPod (wrapped) for
// another checkpoint. A compressed archive is read once, in full, to the
// end; nothing of it is kept but those two files.
func ReadPod(path string, opts Options) (*Pod, error) {
	opts = opts.withDefaults()
	opts.Container = ""
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return readPodDir(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadPodFile(path, f, opts)
}

// ReadPodFile is ReadPod on the open archive f (named path in errors and
// in Pod.Path), as OpenFile: f is read with ReadAt and seeks, and stays
// open.
func ReadPodFile(path string, f *os.File, opts Options) (*Pod, error) {
	opts = opts.withDefaults()
	opts.Container = ""
	_, comp, err := sniffFile(path, f)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	cr, tr, kind, closeDecomp, err := tarOf(path, f, comp, opts)
	if err != nil {
		return nil, err
	}
	defer closeDecomp()
	files := map[string][]byte{}
	withImages := map[string]bool{} // directory -> has checkpoint/ images
	var tops []string               // top-level regular files
	_, err = scan(path, cr, tr, opts, -1, true, func(m *member) error {
		if m.hdr.Typeflag != tar.TypeReg {
			return nil
		}
		dir, rest, nested := strings.Cut(m.name, "/")
		if !nested {
			tops = append(tops, m.name)
			if m.name != PodOptionsFile && m.name != PodDumpFile {
				return nil
			}
			if _, dup := files[m.name]; dup {
				return memberError(path, m.hdr.Name, "duplicate member (%q appears twice): refused", m.name)
			}
			if m.hdr.Size > MaxMetaSize {
				return memberError(path, m.hdr.Name, "%d bytes, more than the %d allowed", m.hdr.Size, MaxMetaSize)
			}
			b, err := io.ReadAll(io.LimitReader(tr, m.hdr.Size))
			if err != nil || int64(len(b)) != m.hdr.Size {
				return memberError(path, m.hdr.Name, "truncated archive: declares %d bytes, the data ends after %d bytes", m.hdr.Size, len(b))
			}
			files[m.name] = b
			return nil
		}
		if strings.HasPrefix(rest, "checkpoint/") && !strings.Contains(rest[len("checkpoint/"):], "/") {
			withImages[dir] = true
		}
		return nil
	})
	var pe *PodError
	switch {
	case errors.As(err, &pe):
	case err == nil:
		return nil, fmt.Errorf("%s: %w", path, ErrNotPod) // checkpoint/ at the top
	default:
		if _, ok := files[PodOptionsFile]; !ok && !slices.Contains(tops, PodOptionsFile) {
			return nil, fmt.Errorf("%s: %w: %w", path, ErrNotPod, err)
		}
		return nil, err
	}
	p, err := parsePod(path, files[PodOptionsFile], files[PodDumpFile])
	if err != nil {
		return nil, err
	}
	p.Kind = kind
	p.check(func(dir string) bool { return withImages[dir] }, func(name string) bool { return slices.Contains(tops, name) }, withImages)
	return p, nil
}

// readPodDir reads an extracted pod checkpoint.
func readPodDir(path string) (*Pod, error) {
	if _, err := os.Lstat(filepath.Join(path, "checkpoint")); err == nil {
		return nil, fmt.Errorf("%s: %w", path, ErrNotPod)
	}
	opt, err := readSmall(filepath.Join(path, PodOptionsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotPod)
	}
	if err != nil {
		return nil, err
	}
	dump, err := readSmall(filepath.Join(path, PodDumpFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	p, err := parsePod(path, opt, dump)
	if err != nil {
		return nil, err
	}
	p.Kind = KindDirectory
	ents, _ := os.ReadDir(path)
	withImages := map[string]bool{}
	for _, e := range ents {
		if !e.IsDir() { // a symlink is not followed out of the pod
			continue
		}
		if st, err := os.Lstat(filepath.Join(path, e.Name(), "checkpoint", "inventory.img")); err == nil && st.Mode().IsRegular() {
			withImages[e.Name()] = true
		}
	}
	p.check(func(dir string) bool { return withImages[dir] }, func(name string) bool {
		st, err := os.Lstat(filepath.Join(path, name))
		return err == nil && st.Mode().IsRegular()
	}, withImages)
	return p, nil
}

// readSmall reads a regular file of at most MaxMetaSize bytes, without
// following a symbolic link.
func readSmall(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	if st.Size() > MaxMetaSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", name, st.Size(), MaxMetaSize)
	}
	return io.ReadAll(io.LimitReader(f, MaxMetaSize))
}

// parsePod decodes pod.options (both layouts) and pod.dump.
func parsePod(path string, opt, dump []byte) (*Pod, error) {
	where := path + ": " + PodOptionsFile
	if opt == nil {
		return nil, fmt.Errorf("%s: %w", where, fs.ErrNotExist)
	}
	var raw struct {
		Version      int               `json:"version"`
		Containers   json.RawMessage   `json:"containers"`
		Annotations  map[string]string `json:"annotations"`
		MountLabel   string            `json:"mountLabel"`
		ProcessLabel string            `json:"processLabel"`
	}
	if err := json.Unmarshal(opt, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	p := &Pod{Path: path, Version: raw.Version, Annotations: raw.Annotations, MountLabel: raw.MountLabel, ProcessLabel: raw.ProcessLabel}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	cs := bytes.TrimSpace(raw.Containers)
	switch {
	case len(cs) > 0 && cs[0] == '[':
		var names []string
		if err := json.Unmarshal(cs, &names); err != nil {
			return nil, fmt.Errorf("%s: containers: %w", where, err)
		}
		p.Nested = true
		for _, n := range names {
			p.Containers = append(p.Containers, PodContainer{Name: n, Dir: n + ".tar"})
		}
	case len(cs) > 0 && cs[0] == '{':
		pairs, err := objectPairs(cs)
		if err != nil {
			return nil, fmt.Errorf("%s: containers: %w", where, err)
		}
		for _, kv := range pairs {
			c := PodContainer{Name: kv[0], Dir: kv[1]}
			c.ID, _, _ = strings.Cut(c.Dir, "-")
			p.Containers = append(p.Containers, c)
		}
	default:
		return nil, fmt.Errorf("%s: no \"containers\" (an object or a list)", where)
	}
	names := map[string]bool{}
	dirs := map[string]bool{}
	for _, c := range p.Containers {
		if err := checkPodName(c.Name); err != nil {
			return nil, fmt.Errorf("%s: container name %q: %w", where, c.Name, err)
		}
		if err := checkPodName(c.Dir); err != nil {
			return nil, fmt.Errorf("%s: container %q: directory %q: %w", where, c.Name, c.Dir, err)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("%s: container %q named twice: refused", where, c.Name)
		}
		if dirs[c.Dir] {
			return nil, fmt.Errorf("%s: container %q: directory %q given to two containers: refused", where, c.Name, c.Dir)
		}
		names[c.Name], dirs[c.Dir] = true, true
	}
	sort.Slice(p.Containers, func(i, j int) bool { return p.Containers[i].Name < p.Containers[j].Name })
	if dump != nil {
		var d struct {
			Metadata struct {
				Name      string `json:"name"`
				UID       string `json:"uid"`
				Namespace string `json:"namespace"`
				Attempt   uint32 `json:"attempt"`
			} `json:"metadata"`
			Hostname     string `json:"hostname"`
			LogDirectory string `json:"log_directory"`
		}
		if err := json.Unmarshal(dump, &d); err != nil {
			p.Notes = append(p.Notes, fmt.Sprintf("%s: %s: %v", path, PodDumpFile, err))
		} else {
			p.Sandbox = &PodSandbox{Name: d.Metadata.Name, UID: d.Metadata.UID, Namespace: d.Metadata.Namespace,
				Attempt: d.Metadata.Attempt, Hostname: d.Hostname, LogDirectory: d.LogDirectory}
		}
	}
	return p, nil
}

// check fills each container's Err (directory without images, nested
// archive) and p.Unlisted.
func (p *Pod) check(hasImages func(dir string) bool, hasFile func(name string) bool, withImages map[string]bool) {
	listed := map[string]bool{}
	for i := range p.Containers {
		c := &p.Containers[i]
		listed[c.Dir] = true
		switch {
		case p.Nested && hasFile(c.Dir):
		case p.Nested:
			c.Err = fmt.Errorf("%s: container %q: %s names it, the checkpoint lacks %q: %w", p.Path, c.Name, PodOptionsFile, c.Dir, fs.ErrNotExist)
		case !hasImages(c.Dir):
			c.Err = fmt.Errorf("%s: container %q: %s names directory %q, the checkpoint has no %s/checkpoint/ images: %w", p.Path, c.Name, PodOptionsFile, c.Dir, c.Dir, fs.ErrNotExist)
		}
	}
	for d := range withImages {
		if !listed[d] {
			p.Unlisted = append(p.Unlisted, d)
		}
	}
	sort.Strings(p.Unlisted)
}

// checkPodName refuses a container name or directory that is not one
// plain path component.
func checkPodName(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case s == "." || s == "..":
		return errors.New("not a file name: refused")
	case strings.ContainsAny(s, "/\\\x00"):
		return errors.New("has a path separator: refused")
	case len(s) > maxImageLen:
		return fmt.Errorf("%d bytes, longer than %d (NAME_MAX): refused", len(s), maxImageLen)
	}
	return nil
}

// objectPairs returns the members of the JSON object b in order, as
// strings; a key given twice is an error (encoding/json would keep the
// last).
func objectPairs(b []byte) ([][2]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	var out [][2]string
	seen := map[string]bool{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := kt.(string)
		var v string
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("container %q: %w", k, err)
		}
		if seen[k] {
			return nil, fmt.Errorf("container %q named twice: refused", k)
		}
		seen[k] = true
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// OpenFile opens the checkpoint archive f, named path in errors and in
// Checkpoint.Path (a file that has no name of its own: an anonymous file
// holding a checkpoint image's layer, SpoolFile), as Open opens a file.
// OpenFile takes f, whatever happens: the Checkpoint's Close closes it
// (or it is closed at once when not needed).
func OpenFile(path string, f *os.File, opts Options) (c *Checkpoint, err error) {
	opts = opts.withDefaults()
	if strings.HasSuffix(opts.Container, nestedSuffix) {
		c, err = openNestedFile(path, f, opts)
	} else {
		c, err = openFile(path, f, opts)
	}
	if err != nil || c.f != f {
		f.Close()
	}
	return c, err
}

// SpoolFile copies r (at most opts.MaxBytes bytes: more is an error) into
// an anonymous file under opts.TempDir, which nothing can leave behind,
// and returns it. what names r in errors.
func SpoolFile(what string, r io.Reader, opts Options) (*os.File, error) {
	opts = opts.withDefaults()
	f, err := newAnonFile(opts.TempDir)
	if err != nil {
		return nil, err
	}
	if opts.Context != nil {
		r = &ctxReader{ctx: opts.Context, r: r}
	}
	n, err := io.Copy(f, io.LimitReader(r, opts.MaxBytes+1))
	if err == nil && n > opts.MaxBytes {
		err = fmt.Errorf("more than %d bytes (MaxBytes; a tar bomb?)", opts.MaxBytes)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return f, nil
}
