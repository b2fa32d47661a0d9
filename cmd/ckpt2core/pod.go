package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/rootfs"
)

// containerFlag registers --container on a command that reads one
// container of a CRI-O pod checkpoint. The name (or id) is kept in
// o.Container until openCheckpoint resolves it to the container's
// directory (resolveContainer).
func containerFlag(fs *pflag.FlagSet, o *archive.Options) {
	fs.StringVar(&o.Container, "container", "", "the container (name or id) of a CRI-O pod checkpoint to read")
}

// podUsageError is a --container that does not fit the checkpoint: a
// usage error (exit status 2).
type podUsageError struct{ msg string }

func (e *podUsageError) Error() string { return e.msg }

// podChoiceError is a pod checkpoint opened without --container by a
// command that reads one container: a usage error naming the containers.
type podChoiceError struct {
	pod *archive.Pod
	err error // the archive.PodError
}

func (e *podChoiceError) Error() string {
	return fmt.Sprintf("%s is a CRI-O pod checkpoint of %s (%s): choose one with --container NAME",
		e.pod.Path, count(len(e.pod.Containers), "container"), strings.Join(e.pod.Names(), ", "))
}

func (e *podChoiceError) Unwrap() error { return e.err }

// isUsage reports whether err from openCheckpoint is a usage error.
func isUsage(err error) bool {
	var ue *podUsageError
	var pc *podChoiceError
	return errors.As(err, &ue) || errors.As(err, &pc)
}

// openStatus is the exit status for an error of openCheckpoint.
func openStatus(err error) int {
	if isUsage(err) {
		return exitUsage
	}
	return exitFailed
}

// resolveContainer turns --container KEY (in o.Container) into what to
// open: the path, and o.Container set to the container's directory in
// the archive ("" for an extracted pod, whose container directory is
// returned as the path).
func resolveContainer(path string, o *archive.Options) (string, error) {
	key := o.Container
	if dir, ok := strings.CutPrefix(key, resolvedDir); ok {
		o.Container = dir // chosen from the pod already (podTarget)
		return path, nil
	}
	ro := *o
	ro.Container = ""
	p, err := readPod(path, ro)
	if errors.Is(err, archive.ErrNotPod) {
		return "", &podUsageError{fmt.Sprintf("--container %s: %s is not a pod checkpoint (--container chooses a container of a CRI-O pod checkpoint)", key, path)}
	}
	if err != nil {
		return "", err
	}
	c, ok := p.Container(key)
	if !ok {
		return "", &podUsageError{fmt.Sprintf("--container %s: no such container in the pod checkpoint %s (it has %s)", key, path, strings.Join(p.Names(), ", "))}
	}
	if c.Err != nil {
		return "", c.Err
	}
	path, o.Container = p.Locate(c)
	return path, nil
}

// resolvedDir marks an Options.Container that podTarget set to a
// container's directory, so that opening it does not read the pod again.
// No command-line argument can hold a NUL byte: --container cannot
// forge it.
const resolvedDir = "\x00dir:"

// podTarget returns the path and the options to open container c of pod
// with (o's copy; its Container set to the directory, resolved).
func podTarget(pod *archive.Pod, c archive.PodContainer, o archive.Options) (string, archive.Options) {
	path, dir := pod.Locate(c)
	o.Container = ""
	if dir != "" {
		o.Container = resolvedDir + dir
	}
	return path, o
}

// podOf turns the archive.PodError of a pod checkpoint opened without
// --container into a podChoiceError naming its containers; other errors
// are returned as they are.
func podOf(err error, o archive.Options) error {
	var pe *archive.PodError
	if !errors.As(err, &pe) {
		return err
	}
	o.Container, o.Context, o.Stream = "", nil, false
	p, rerr := readPod(pe.Path, o)
	if rerr != nil {
		return fmt.Errorf("%w; reading it as a pod checkpoint: %w", err, rerr)
	}
	return &podChoiceError{pod: p, err: err}
}

// podChoice returns the pod of err, a podChoiceError, or nil.
func podChoice(err error) *archive.Pod {
	var pc *podChoiceError
	if errors.As(err, &pc) {
		return pc.pod
	}
	return nil
}

// podConvert is a conversion of every container of a pod checkpoint
// (convert without --container): container NAME's cores go to
// OUT/NAME/core.PID.
type podConvert struct {
	pod                  *archive.Pod
	aopts                archive.Options
	out                  string
	root, image          string
	jobs                 int
	force, quiet, asJSON bool
}

// run converts each container in turn and reports every core at once;
// it returns the exit status (as convert's: 0 all converted, 1 none, 3
// some).
func (pc podConvert) run(stop *stopper, stdout, stderr io.Writer) int {
	var made outDirs
	defer made.removeOnStop(stop)()
	var results []convertResult
	missing := 0
	for _, c := range pc.pod.Containers {
		if c.Err != nil {
			results = append(results, convertResult{container: c.Name, err: c.Err})
			missing++
			continue
		}
		path, o := podTarget(pc.pod, c, pc.aopts)
		cv, _, err := openConversion(stop, path, &o, pc.root, pc.image, stderr)
		if err != nil {
			results = append(results, convertResult{container: c.Name, err: err})
			missing++
			continue
		}
		out := filepath.Join(pc.out, c.Name)
		if err := made.make(out); err != nil {
			cv.Close()
			complain(stderr, "", "%s", err)
			return exitFailed
		}
		prog := startProgress(stderr, pagesBytes(cv.src), !pc.quiet)
		rs := convertAll(cv.ck, cv.ck.Pids(), pc.jobs, out, pc.force, cv.opts, prog.add)
		prog.finish()
		cv.Close()
		for i := range rs {
			rs[i].container = c.Name
		}
		results = append(results, rs...)
	}
	ok, failed := reportConversion(results, convertReport{quiet: pc.quiet, asJSON: pc.asJSON}, stdout, stderr)
	switch {
	case failed == 0 && missing == 0:
		return exitOK
	case ok == 0:
		made.removeEmpty()
		return exitFailed
	}
	return exitPartial
}

// pod searches every container of a pod checkpoint (grep without
// --container): each hit names its container (text: the name first; JSON:
// "container"), and the JSON is one array of all hits.
func (g grepRun) pod(stop *stopper, pod *archive.Pod, stdout, stderr io.Writer) int {
	if g.aopts.ExtractDir != "" {
		return usageError(stderr, "grep", grepTrouble, "--extract on a pod checkpoint needs --container NAME (it has %s)", strings.Join(pod.Names(), ", "))
	}
	if len(g.pids) > 0 {
		return usageError(stderr, "grep", grepTrouble, "--pid on a pod checkpoint needs --container NAME (pids are per container; it has %s)", strings.Join(pod.Names(), ", "))
	}
	if g.asJSON && g.counts != nil {
		return usageError(stderr, "grep", grepTrouble, "-f with --json on a pod checkpoint needs --container NAME (it has %s)", strings.Join(pod.Names(), ", "))
	}
	code := grepNone
	var hits []json.RawMessage
	for _, c := range pod.Containers {
		if c.Err != nil {
			complain(stderr, "grep", "container %s: %s", c.Name, c.Err)
			code = grepTrouble
			continue
		}
		gc := g
		path, ao := podTarget(pod, c, *g.aopts)
		gc.aopts, gc.container = &ao, c.Name
		var buf bytes.Buffer
		w := stdout
		if g.asJSON {
			w = &buf
		}
		st := gc.one(stop, path, w, stderr)
		if g.asJSON {
			var hs []json.RawMessage
			if err := json.Unmarshal(buf.Bytes(), &hs); err == nil {
				hits = append(hits, hs...)
			}
		}
		switch {
		case st == grepTrouble:
			code = grepTrouble
		case st == grepFound && code == grepNone:
			code = grepFound
		}
	}
	if g.asJSON {
		out := bufio.NewWriter(stdout)
		out.WriteString("[")
		for i, h := range hits {
			if i > 0 {
				out.WriteString(",")
			}
			out.WriteString("\n")
			out.Write(h)
		}
		if len(hits) > 0 {
			out.WriteString("\n")
		}
		out.WriteString("]\n")
		if err := out.Flush(); err != nil {
			complain(stderr, "grep", "writing output: %v", err)
			return grepTrouble
		}
	}
	return code
}

// inspectPod reports on every container of a pod checkpoint (inspect
// without --container): the pod (pod.dump, pod.options) then each
// container's report; a container that cannot be read costs only its
// report (its error is said, exit status 1 at the end).
func inspectPod(stop *stopper, pod *archive.Pod, aopts *archive.Options, asJSON, env bool, pids []uint, sysroot, image string, stdout, stderr io.Writer) int {
	if aopts.ExtractDir != "" {
		return usageError(stderr, "inspect", exitUsage, "--extract on a pod checkpoint needs --container NAME (it has %s)", strings.Join(pod.Names(), ", "))
	}
	if len(pids) > 0 {
		return usageError(stderr, "inspect", exitUsage, "--pid on a pod checkpoint needs --container NAME (pids are per container; it has %s)", strings.Join(pod.Names(), ", "))
	}
	rep := &inspect.PodReport{Checkpoint: pod.Path, Containers: []inspect.PodContainer{}, Unlisted: append([]string{}, pod.Unlisted...), Warnings: append([]string{}, pod.Notes...)}
	rep.Pod = inspect.PodInfo{Version: pod.Version, Annotations: pod.Annotations, Layout: "directories"}
	if pod.Nested {
		rep.Pod.Layout = "nested archives"
	}
	if s := pod.Sandbox; s != nil {
		rep.Pod.Name, rep.Pod.Namespace, rep.Pod.UID, rep.Pod.Hostname, rep.Pod.LogDirectory = s.Name, s.Namespace, s.UID, s.Hostname, s.LogDirectory
	}
	rep.Pod.FillFromAnnotations()
	code := exitOK
	for _, c := range pod.Containers {
		pc := inspect.PodContainer{Name: c.Name, Directory: c.Dir, ID: c.ID}
		err := c.Err
		if err == nil {
			path, o := podTarget(pod, c, *aopts)
			var r *inspect.Report
			r, _, err = inspectReport(stop, path, &o, env, nil, sysroot, image, stderr)
			if err == nil {
				r.Checkpoint = pod.Path + ":" + c.Dir
				pc.Report = r
			}
		}
		if err != nil {
			complain(stderr, "", "container %s: %s", c.Name, err)
			pc.Error = err.Error()
			code = exitFailed
		}
		rep.Containers = append(rep.Containers, pc)
	}
	var err error
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = inspect.WritePodText(stdout, rep)
	}
	if err != nil {
		complain(stderr, "", "%v", err)
		return exitFailed
	}
	return code
}

// errNotImage: the checkpoint path is not a container image.
var errNotImage = errors.New("not a container image")

// isOCILayout reports whether path is an OCI image layout directory.
func isOCILayout(path string) bool {
	st, err := os.Lstat(path + "/oci-layout")
	return err == nil && st.Mode().IsRegular()
}

// spoolCheckpointImage returns, for a checkpoint committed as a container
// image (cri-o's PodCheckpoint to a non-local target, exported with
// podman save or skopeo: docker-archive, oci-archive or an OCI layout
// directory), its one layer uncompressed into an anonymous file; the
// layer is the checkpoint's tree. errNotImage when path is no image.
func spoolCheckpointImage(path string, o archive.Options) (*os.File, error) {
	img, err := rootfs.OpenImage(path)
	if err != nil {
		return nil, errNotImage
	}
	defer img.Close()
	rc, _, err := img.CheckpointLayer()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer rc.Close()
	return archive.SpoolFile(path+": its layer", rc, o)
}

// openArchive is archive.Open, and for a checkpoint committed as a
// container image, archive.OpenFile of its layer.
func openArchive(path string, o archive.Options) (*archive.Checkpoint, error) {
	var ck *archive.Checkpoint
	err := archive.ErrNotCheckpoint
	if !isOCILayout(path) {
		ck, err = archive.Open(path, o)
	}
	if !errors.Is(err, archive.ErrNotCheckpoint) {
		return ck, err
	}
	f, ierr := spoolCheckpointImage(path, o)
	switch {
	case errors.Is(ierr, errNotImage) && isOCILayout(path):
		return nil, fmt.Errorf("%s: %w", path, ierr)
	case errors.Is(ierr, errNotImage):
		return nil, err
	case ierr != nil:
		return nil, ierr
	}
	ck, err = archive.OpenFile(path, f, o)
	var pe *archive.PodError
	if err != nil && !errors.As(err, &pe) {
		return nil, fmt.Errorf("%s is a container image, its layer no checkpoint: %w", path, err)
	}
	return ck, err
}

// readPod is archive.ReadPod, and for a pod checkpoint committed as a
// container image, archive.ReadPodFile of its layer.
func readPod(path string, o archive.Options) (*archive.Pod, error) {
	p, err := archive.ReadPod(path, o)
	if !errors.Is(err, archive.ErrNotPod) {
		return p, err
	}
	f, ierr := spoolCheckpointImage(path, o)
	switch {
	case errors.Is(ierr, errNotImage):
		return nil, err
	case ierr != nil:
		return nil, ierr
	}
	defer f.Close()
	return archive.ReadPodFile(path, f, o)
}
