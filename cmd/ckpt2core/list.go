package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// kubeletCheckpoints is where the kubelet writes checkpoint archives.
const kubeletCheckpoints = "/var/lib/kubelet/checkpoints"

// checkpointRow is one checkpoint as list and inspect --summary show it.
type checkpointRow struct {
	File         string `json:"file"`
	Kind         string `json:"kind"` // archive.Kind*: "directory", "tar", "tar+gzip", "tar+zstd"
	Engine       string `json:"engine"`
	Pod          string `json:"pod"`
	Namespace    string `json:"namespace"`
	Container    string `json:"container"`
	Image        string `json:"image"`
	ID           string `json:"id"`
	Runtime      string `json:"runtime"`
	Created      string `json:"created"`
	Checkpointed string `json:"checkpointed"`
	Processes    int    `json:"processes"`
	// Size is the file's size (an archive) or the images' (a directory).
	Size int64 `json:"size"`
	// CheckpointSize sums the CRIU images; PagesSize the pages-*.img of
	// them; RootfsDiffSize is rootfs-diff.tar's (0 if none).
	CheckpointSize int64 `json:"checkpoint_size"`
	PagesSize      int64 `json:"pages_size"`
	RootfsDiffSize int64 `json:"rootfs_diff_size"`
}

// summarizeAll describes the checkpoint at path in one row, or a pod
// checkpoint opened without --container in one row per container (File
// the pod's path); an error names what could not be described (the rows
// of the others are returned).
func summarizeAll(stop *stopper, path string, aopts *archive.Options) ([]checkpointRow, error) {
	row, err := summarize(stop, path, aopts)
	pod := podChoice(err)
	if pod == nil {
		if err != nil {
			return nil, err
		}
		return []checkpointRow{row}, nil
	}
	var rows []checkpointRow
	var errs []string
	for _, c := range pod.Containers {
		if c.Err != nil {
			errs = append(errs, fmt.Sprintf("container %s: %v", c.Name, c.Err))
			continue
		}
		cpath, o := podTarget(pod, c, *aopts)
		r, err := summarize(stop, cpath, &o)
		if err != nil {
			errs = append(errs, fmt.Sprintf("container %s: %v", c.Name, err))
			continue
		}
		r.File = path
		if r.Container == "" {
			r.Container = c.Name
		}
		rows = append(rows, r)
	}
	if len(errs) > 0 {
		return rows, errors.New(strings.Join(errs, "; "))
	}
	return rows, nil
}

// summarize opens the checkpoint at path and describes it in one row.
func summarize(stop *stopper, path string, aopts *archive.Options) (checkpointRow, error) {
	row := checkpointRow{File: path}
	// inventory.img and pstree.img: a checkpoint. A compressed archive
	// streams, keeping of the pages what inspect reads.
	src, ck, closeSrc, err := openRetaining(stop, path, aopts, inspectReads, "list", false, io.Discard)
	if err != nil {
		return row, err
	}
	defer closeSrc()
	row.Processes = len(ck.Procs)
	opts := inspect.Options{Name: path}
	if len(ck.Procs) > 0 {
		opts.Pids = []uint32{ck.Procs[0].Pid} // the container's facts need no more
	}
	if cs, ok := src.(*checkpointSource); ok {
		row.Kind = cs.ck.Kind()
		opts.Meta = cs.ck.Meta()
		if f, err := cs.ck.RootfsDiff(); err == nil {
			row.RootfsDiffSize = f.Size()
			f.Close()
		}
	}
	rep, err := inspect.Inspect(ck, opts)
	if err != nil {
		return row, err
	}
	if c := rep.Container; c != nil {
		row.Engine, row.Pod, row.Namespace, row.Container = c.Engine, c.Pod, c.Namespace, c.Name
		row.Image, row.ID, row.Runtime, row.Created, row.Checkpointed = c.Image, c.ID, c.Runtime, c.Created, c.Checkpointed
		if t, err := time.Parse(time.RFC3339Nano, c.Created); err == nil {
			row.Created = t.UTC().Format(time.RFC3339) // as checkpointctl shows it
		}
	}
	if row.Checkpointed == "" {
		row.Checkpointed = imageTime(src)
	}
	names, err := src.Names()
	if err != nil {
		return row, err
	}
	for _, n := range names {
		f, err := src.Open(n)
		if err != nil {
			continue
		}
		row.CheckpointSize += f.Size()
		if strings.HasPrefix(n, "pages-") && strings.HasSuffix(n, ".img") {
			row.PagesSize += f.Size()
		}
		f.Close()
	}
	row.Size = row.CheckpointSize + row.RootfsDiffSize
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		row.Size = st.Size()
	}
	return row, nil
}

// imageTime dates a checkpoint without container metadata (a bare image
// directory) by the modification time of stats-dump, which CRIU writes as
// the dump ends, or else of inventory.img; "" if neither is a file on disk.
func imageTime(src criuimg.Source) string {
	for _, name := range []string{inspect.StatsDumpFile, "inventory.img"} {
		f, err := src.Open(name)
		if err != nil {
			continue
		}
		osf, ok := f.(criuimg.OSFile)
		if ok {
			of, _ := osf.OSFile()
			if st, err := of.Stat(); err == nil {
				f.Close()
				return st.ModTime().UTC().Format(time.RFC3339)
			}
		}
		f.Close()
	}
	return ""
}

const listExamples = `
Finds the checkpoints in each DIR (default ` + kubeletCheckpoints + `):
container checkpoint archives (tar, tar+gzip, tar+zstd) and image
directories (CRIU images, or an extracted archive with checkpoint/ inside),
recognized by content, not by name. One row each, oldest first: the file,
the engine, the Kubernetes pod and namespace, the container, when it was
checkpointed, and the size. A DIR that is itself a checkpoint is listed.
Entries that are no checkpoint or cannot be read are named on stderr and
skipped.

Examples:
  ckpt2core list
  ckpt2core list /srv/checkpoints /tmp --json | jq -r '.[].file'

Exit status: 0 listed (also when nothing was found); 1 a DIR could not be
read; 2 usage error.
`

func runList(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core list", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print a JSON array of rows")
	aopts := archiveFlags(fs)
	help := helpText(fs, "Usage: ckpt2core list [DIR...] [--json]", listExamples)
	if status, ok := parseFlags(fs, "list", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	if aopts.ExtractDir != "" {
		return usageError(stderr, "list", exitUsage, "--extract takes one archive, not a list")
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		dirs = []string{kubeletCheckpoints}
	}
	status := exitOK
	var rows []checkpointRow
	for _, dir := range dirs {
		cands, err := candidates(dir)
		if err != nil {
			complain(stderr, "", "%v", err)
			status = exitFailed
			continue
		}
		for _, c := range cands {
			rs, err := summarizeAll(stop, c, aopts)
			if err != nil {
				fmt.Fprintf(stderr, "ckpt2core: %s: skipped: %s\n", safe(c), safe(err.Error()))
			}
			rows = append(rows, rs...)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Checkpointed != rows[j].Checkpointed {
			return rows[i].Checkpointed < rows[j].Checkpointed
		}
		return rows[i].File < rows[j].File
	})
	var err error
	if *asJSON {
		err = writeRowsJSON(stdout, rows)
	} else {
		err = writeTable(stdout, []string{"FILE", "ENGINE", "POD", "NAMESPACE", "CONTAINER", "CHECKPOINTED", "SIZE"}, rows, func(r checkpointRow) []string {
			return []string{r.File, r.Engine, r.Pod, r.Namespace, r.Container, r.Checkpointed, humanSize(uint64(r.Size))}
		})
	}
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitFailed
	}
	return status
}

// candidates returns what in dir may be a checkpoint: dir itself if it is
// a checkpoint file or image directory, else its regular files and the
// subdirectories holding inventory.img or checkpoint/inventory.img.
// Symlinks are not followed.
func candidates(dir string) ([]string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() || isImageDir(dir) {
		return []string{dir}, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.Type().IsRegular():
			out = append(out, p)
		case e.IsDir() && isImageDir(p):
			out = append(out, p)
		}
	}
	return out, nil
}

// isImageDir says whether dir holds CRIU images (inventory.img), itself or
// in checkpoint/.
func isImageDir(dir string) bool {
	for _, p := range []string{filepath.Join(dir, "inventory.img"), filepath.Join(dir, "checkpoint", "inventory.img")} {
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

func writeRowsJSON(w io.Writer, rows []checkpointRow) error {
	if rows == nil {
		rows = []checkpointRow{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// writeTable writes rows under header as aligned columns (every cell
// escaped with safe), with a line of dashes under the header as
// checkpointctl does.
func writeTable(w io.Writer, header []string, rows []checkpointRow, cells func(checkpointRow) []string) error {
	tw := tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	dashes := make([]string, len(header))
	for i, h := range header {
		dashes[i] = strings.Repeat("-", len(h))
	}
	fmt.Fprintln(tw, strings.Join(dashes, "\t"))
	for _, r := range rows {
		cs := cells(r)
		for i := range cs {
			cs[i] = strings.ReplaceAll(safe(cs[i]), "\t", " ")
			if cs[i] == "" {
				cs[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(cs, "\t"))
	}
	return tw.Flush()
}

// runSummary is 'inspect --summary A B ...': one row per checkpoint (per
// container of a pod), the
// columns of checkpointctl's show (plus the memory pages). A checkpoint
// that cannot be read is named on stderr; the others are shown.
func runSummary(stop *stopper, paths []string, asJSON bool, aopts *archive.Options, stdout, stderr io.Writer) int {
	if aopts.ExtractDir != "" && len(paths) > 1 {
		return usageError(stderr, "inspect", exitUsage, "--extract takes one archive, not %d", len(paths))
	}
	status := exitOK
	var rows []checkpointRow
	for _, p := range paths {
		rs, err := summarizeAll(stop, p, aopts)
		if err != nil {
			complain(stderr, "", "%v", err)
			status = exitFailed
		}
		rows = append(rows, rs...)
	}
	var err error
	if asJSON {
		err = writeRowsJSON(stdout, rows)
	} else if len(rows) > 0 {
		err = writeTable(stdout, []string{"CONTAINER", "IMAGE", "ID", "RUNTIME", "CREATED", "ENGINE", "CHKPT SIZE", "MEMORY PAGES", "ROOT FS DIFF SIZE"}, rows, func(r checkpointRow) []string {
			id := r.ID
			if len(id) > 12 {
				id = id[:12]
			}
			return []string{r.Container, r.Image, id, r.Runtime, r.Created, r.Engine, humanSize(uint64(r.CheckpointSize)), humanSize(uint64(r.PagesSize)), humanSize(uint64(r.RootfsDiffSize))}
		})
	}
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitFailed
	}
	return status
}
