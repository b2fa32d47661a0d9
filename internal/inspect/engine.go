package inspect

import (
	"bytes"
	"errors"
	"io"

	"github.com/klauspost/compress/gzip"

	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/utsns"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Files some engines write around the CRIU images, besides config.dump,
// spec.dump, network.status and the statistics.
//
//   - containerd 2.x (internal/cri/server/container_checkpoint_linux.go,
//     CheckpointContainer): status (its container store's status),
//     status.dump (the CRI ContainerStatus as JSON), container.log (the
//     container's log), dump.log; rootfs-diff.tar is the container's rw
//     layer as containerd's diff service wrote it: gzip-compressed, with
//     OCI whiteouts.
//   - CRI-O (internal/lib/checkpoint.go, prepareCheckpointExport and
//     exportCheckpoint): deleted.files (JSON list of the paths the
//     container deleted), bind.mounts (JSON list of the external bind
//     mounts), dump.log, and the container's log stored under the member
//     named after the annotation that gives its path,
//     io.kubernetes.cri-o.LogPath.
//   - Podman (libpod, Container.exportCheckpoint):
//     deleted.files as CRI-O, ctr.log, network.status (netavark's
//     per-network status block).
const (
	StatusFile       = "status"
	StatusDumpFile   = "status.dump"
	ContainerLogFile = "container.log"
	CtrLogFile       = "ctr.log"
	CRIOLogFile      = "io.kubernetes.cri-o.LogPath"
	DeletedFilesFile = "deleted.files"
	BindMountsFile   = "bind.mounts"
	DumpLogFile      = "dump.log"
)

// logFiles are the members holding a container's log, by engine.
var logFiles = []string{CtrLogFile, ContainerLogFile, CRIOLogFile}

// Network is one interface of a container, from network.status.
type Network struct {
	Network   string `json:"network"`
	Interface string `json:"interface"`
	IP        string `json:"ip"` // address/prefix
	MAC       string `json:"mac"`
	Gateway   string `json:"gateway"`
}

// BindMount is one entry of CRI-O's bind.mounts: a host file or directory
// bind-mounted into the container.
type BindMount struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Type        string `json:"type"`        // "file" or "directory"
	Permissions string `json:"permissions"` // octal, as ls -l's digits
}

// LogFile is a container log stored in the checkpoint.
type LogFile struct {
	Member string `json:"member"`
	Size   int64  `json:"size"`
}

// Sizes are the sizes checkpointctl shows: the CRIU images together
// ("checkpoint size"), the pages-*.img files ("memory pages size") and
// rootfs-diff.tar ("root fs diff size"); -1 where the checkpoint has none.
type Sizes struct {
	CheckpointBytes  int64 `json:"checkpoint_bytes"`
	MemoryPagesBytes int64 `json:"memory_pages_bytes"`
	RootfsDiffBytes  int64 `json:"rootfs_diff_bytes"`
}

// UTS is a UTS namespace's names, from utsns-<id>.img.
type UTS struct {
	Image    string `json:"image"`
	Hostname string `json:"hostname"`
	Domain   string `json:"domain"`
}

// loadUTS reads every utsns-<id>.img of src.
func loadUTS(src criuimg.Source) ([]UTS, error) {
	names, err := src.Names()
	if err != nil {
		return nil, err
	}
	var out []UTS
	var errs []string
	for _, n := range names {
		if !strings.HasPrefix(n, "utsns-") || !strings.HasSuffix(n, ".img") {
			continue
		}
		err := criuimg.EachEntry(src, n, criuimg.MagicUTSNS, func() *utsns.UtsnsEntry { return &utsns.UtsnsEntry{} },
			func(e *utsns.UtsnsEntry) error {
				out = append(out, UTS{Image: n, Hostname: e.GetNodename(), Domain: e.GetDomainname()})
				return nil
			})
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n, err))
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// checkpointSizes adds up the sizes of the CRIU images of src; diff is the
// size of rootfs-diff.tar or -1.
func checkpointSizes(src criuimg.Source, diff int64) (*Sizes, error) {
	names, err := src.Names()
	if err != nil {
		return nil, err
	}
	s := &Sizes{RootfsDiffBytes: diff}
	for _, n := range names {
		f, err := src.Open(n)
		if err != nil {
			continue
		}
		sz := f.Size()
		f.Close()
		s.CheckpointBytes += sz
		if strings.HasPrefix(n, "pages-") && strings.HasSuffix(n, ".img") {
			s.MemoryPagesBytes += sz
		}
	}
	return s, nil
}

// ParseNetworks returns the interfaces network.status describes: Podman 4
// and later write netavark's map of network name to status block
// ({"podman": {"interfaces": {"eth0": {"subnets": [{"ipnet", "gateway"}],
// "mac_address"}}}}), as checkpointctl reads it. "null" or "{}" (no
// network) gives none and no error; anything else that is not that shape
// is an error naming the file.
func ParseNetworks(b []byte) ([]Network, error) {
	var m map[string]struct {
		Interfaces map[string]struct {
			Subnets []struct {
				IPNet   string `json:"ipnet"`
				Gateway string `json:"gateway"`
			} `json:"subnets"`
			MacAddress string `json:"mac_address"`
		} `json:"interfaces"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", NetworkStatusFile, err)
	}
	var out []Network
	for _, net := range sortedKeys(m) {
		ifs := m[net].Interfaces
		for _, name := range sortedKeys(ifs) {
			i := ifs[name]
			if len(i.Subnets) == 0 {
				out = append(out, Network{Network: net, Interface: name, MAC: i.MacAddress})
			}
			for _, s := range i.Subnets {
				out = append(out, Network{Network: net, Interface: name, IP: s.IPNet, MAC: i.MacAddress, Gateway: s.Gateway})
			}
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

// MaxDeletedFiles bounds the entries read from deleted.files.
const MaxDeletedFiles = 1 << 20

// ParseDeletedFiles returns the paths of deleted.files (CRI-O and Podman:
// a JSON list of the paths the container deleted from its image), cleaned
// and absolute.
func ParseDeletedFiles(b []byte) ([]string, error) {
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", DeletedFilesFile, err)
	}
	if len(l) > MaxDeletedFiles {
		return nil, fmt.Errorf("%s: %d entries, more than %d", DeletedFilesFile, len(l), MaxDeletedFiles)
	}
	out := make([]string, 0, len(l))
	for _, p := range l {
		out = append(out, path.Clean("/"+p))
	}
	return out, nil
}

// ParseBindMounts returns the entries of CRI-O's bind.mounts.
func ParseBindMounts(b []byte) ([]BindMount, error) {
	var l []struct {
		Source      string `json:"source"`
		Destination string `json:"destination"`
		FileType    string `json:"file_type"`
		Permissions uint32 `json:"permissions"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", BindMountsFile, err)
	}
	out := make([]BindMount, 0, len(l))
	for _, m := range l {
		out = append(out, BindMount{Source: m.Source, Destination: m.Destination, Type: m.FileType, Permissions: fmt.Sprintf("%04o", m.Permissions&0o7777)})
	}
	return out, nil
}

// statusDump is the part of containerd's status.dump (the CRI
// ContainerStatus, marshalled with the JSON names of its Go type) that
// inspect uses.
type statusDump struct {
	ID       string `json:"id"`
	Metadata *struct {
		Name string `json:"name"`
	} `json:"metadata"`
	CreatedAt int64 `json:"created_at"` // ns since the epoch
	StartedAt int64 `json:"started_at"`
	Image     *struct {
		Image string `json:"image"`
	} `json:"image"`
	ImageRef    string            `json:"image_ref"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	LogPath     string            `json:"log_path"`
}

// applyStatusDump fills c from containerd's status.dump.
func applyStatusDump(c *Container, b []byte) error {
	var s statusDump
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", StatusDumpFile, err)
	}
	if c.Engine == "" {
		c.Engine = "containerd"
	}
	if s.Metadata != nil {
		c.Name = firstNonEmpty(s.Labels["io.kubernetes.container.name"], s.Metadata.Name, c.Name)
	}
	c.Pod = firstNonEmpty(s.Labels["io.kubernetes.pod.name"], c.Pod)
	c.Namespace = firstNonEmpty(s.Labels["io.kubernetes.pod.namespace"], c.Namespace)
	if s.Image != nil {
		c.Image = firstNonEmpty(c.Image, s.Image.Image)
	}
	c.ImageRef = firstNonEmpty(c.ImageRef, s.ImageRef)
	c.LogPath = firstNonEmpty(s.LogPath, c.LogPath)
	c.ID = firstNonEmpty(c.ID, s.ID)
	if c.Created == "" && s.CreatedAt > 0 {
		c.Created = time.Unix(0, s.CreatedAt).UTC().Format(time.RFC3339Nano)
	}
	return nil
}

// addEngineFiles adds what the engine-specific files of meta say to rep
// and c (c may be nil: then only the report-level facts). Each unreadable
// file costs what it holds, and a warning naming it.
func addEngineFiles(rep *Report, c *Container, meta fs.FS, read func(string) ([]byte, bool, error), warn func(string, ...any)) {
	if c != nil {
		if b, ok, err := read(StatusDumpFile); err != nil {
			warn("%v", err)
		} else if ok {
			if err := applyStatusDump(c, b); err != nil {
				warn("%v: the container's names, pod and image from it are not shown", err)
			}
		}
		if b, ok, err := read(NetworkStatusFile); err != nil {
			warn("%v", err)
		} else if ok {
			nets, err := ParseNetworks(b)
			switch {
			case err != nil:
				warn("%v: the container's networks are not shown", err)
			case len(nets) == 0:
				warn("%s: no network in it (%d bytes)", NetworkStatusFile, len(b))
			}
			c.Networks = nets
		}
		if b, ok, err := read(BindMountsFile); err != nil {
			warn("%v", err)
		} else if ok {
			bm, err := ParseBindMounts(b)
			if err != nil {
				warn("%v: the bind mounts are not shown", err)
			}
			c.BindMounts = bm
		}
		if meta != nil {
			for _, n := range logFiles {
				if st, err := fs.Stat(meta, n); err == nil {
					c.Logs = append(c.Logs, LogFile{Member: n, Size: st.Size()})
				}
			}
		}
		if c.LogPath == "" {
			c.LogPath = c.Annotations[CRIOLogFile]
		}
	}
	if b, ok, err := read(DeletedFilesFile); err != nil {
		warn("%v", err)
	} else if ok {
		del, err := ParseDeletedFiles(b)
		if err != nil {
			warn("%v: the deleted files are not shown", err)
		}
		for _, p := range del {
			rep.RootfsDiff = append(rep.RootfsDiff, DiffFile{Path: strings.TrimPrefix(p, "/"), Type: "deleted"})
		}
	}
}

// OCI whiteouts (image-spec layer.md) in a layer tar.
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
)

// Decompressed returns r's content, decompressed if it is gzip (told by
// its first two bytes, 1f 8b), else r itself.
func Decompressed(r io.Reader) (io.Reader, error) {
	// Exactly two bytes are read ahead (no buffering), so that a caller
	// counting what r gave knows where each member of a plain tar lies.
	var head [2]byte
	n, err := io.ReadFull(r, head[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	all := io.MultiReader(bytes.NewReader(head[:n]), r)
	if n == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(all)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	}
	return all, nil
}
