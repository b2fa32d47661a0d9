package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sort"
	"time"
)

// Names of the files a container engine writes around the CRIU images.
const (
	ConfigDumpFile    = "config.dump"
	SpecDumpFile      = "spec.dump"
	NetworkStatusFile = "network.status"
	StatsDumpFile     = "stats-dump"
	StatsRestoreFile  = "stats-restore"
	RootfsDiffFile    = "rootfs-diff.tar"
)

// configDump holds the fields of config.dump that inspect shows. Podman
// writes its ContainerConfig; CRI-O writes a smaller struct with the same
// JSON names (id, name, rootfsImageName, createdTime, checkpointedTime).
type configDump struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	RootfsImage      string    `json:"rootfsImage"`
	RootfsImageName  string    `json:"rootfsImageName"`
	RootfsImageID    string    `json:"rootfsImageID"`
	RootfsImageRef   string    `json:"rootfsImageRef"`
	RawImageName     string    `json:"RawImageName"`
	Runtime          string    `json:"runtime"`
	OCIRuntime       string    `json:"ociRuntime"`
	CreatedTime      string    `json:"createdTime"`
	CheckpointedTime string    `json:"checkpointedTime"`
	Command          []string  `json:"command"`
	Spec             *specDump `json:"spec"`
}

// specDump is the part of an OCI runtime spec (spec.dump) inspect uses.
type specDump struct {
	Hostname string `json:"hostname"`
	Process  *struct {
		Args []string `json:"args"`
	} `json:"process"`
	Annotations map[string]string `json:"annotations"`
}

// ParseContainer builds the container description from the contents of
// config.dump, spec.dump and network.status; any of them may be nil. It
// follows checkpointctl: the engine is told by the io.container.manager
// annotation (libpod: Podman, cri-o: CRI-O) or by containerd's
// io.kubernetes.cri.* annotations.
func ParseContainer(config, spec, network []byte) (*Container, error) {
	var cfg configDump
	var sp specDump
	if len(config) > 0 {
		if err := json.Unmarshal(config, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", ConfigDumpFile, err)
		}
	}
	if len(spec) > 0 {
		if err := json.Unmarshal(spec, &sp); err != nil {
			return nil, fmt.Errorf("%s: %w", SpecDumpFile, err)
		}
	} else if cfg.Spec != nil {
		sp = *cfg.Spec
	}
	c := &Container{
		Name:     cfg.Name,
		ID:       cfg.ID,
		Image:    firstNonEmpty(cfg.RootfsImageName, cfg.RawImageName, cfg.RootfsImage),
		ImageID:  cfg.RootfsImageID,
		Runtime:  firstNonEmpty(cfg.OCIRuntime, cfg.Runtime),
		Hostname: sp.Hostname,
		Command:  cfg.Command,
		ImageRef: cfg.RootfsImageRef,
	}
	if len(c.Command) == 0 && sp.Process != nil {
		c.Command = sp.Process.Args
	}
	c.Created = normTime(cfg.CreatedTime)
	c.Checkpointed = normTime(cfg.CheckpointedTime)
	if c.Checkpointed != "" {
		c.CheckpointedFrom = ConfigDumpFile
	}
	a := sp.Annotations
	if len(a) > 0 {
		c.Annotations = a
	}
	switch a["io.container.manager"] {
	case "libpod":
		c.Engine = "Podman"
	case "cri-o":
		c.Engine = "CRI-O"
		var labels map[string]string
		if l := a["io.kubernetes.cri-o.Labels"]; l != "" {
			if err := json.Unmarshal([]byte(l), &labels); err != nil {
				return nil, fmt.Errorf("%s: annotation io.kubernetes.cri-o.Labels: %w", SpecDumpFile, err)
			}
		}
		c.Name = firstNonEmpty(labels["io.kubernetes.container.name"], a["io.kubernetes.container.name"], c.Name)
		c.Pod = firstNonEmpty(labels["io.kubernetes.pod.name"], a["io.kubernetes.pod.name"])
		c.Namespace = firstNonEmpty(labels["io.kubernetes.pod.namespace"], a["io.kubernetes.pod.namespace"])
		c.Image = firstNonEmpty(a["io.kubernetes.cri-o.ImageName"], c.Image)
		c.ImageID = firstNonEmpty(a["io.kubernetes.cri-o.ImageRef"], c.ImageID)
		c.ID = firstNonEmpty(c.ID, a["io.kubernetes.cri-o.ContainerID"])
		if ip := a["io.kubernetes.cri-o.IP.0"]; ip != "" {
			c.IPs = append(c.IPs, ip)
		}
	default:
		if a["io.kubernetes.cri.container-name"] != "" {
			c.Engine = "containerd"
			c.Name = firstNonEmpty(a["io.kubernetes.cri.container-name"], c.Name)
			c.Pod = a["io.kubernetes.cri.sandbox-name"]
			c.Namespace = a["io.kubernetes.cri.sandbox-namespace"]
			c.Image = firstNonEmpty(a["io.kubernetes.cri.image-name"], c.Image)
		}
	}
	if c.Created == "" {
		c.Created = a["io.kubernetes.cri-o.Created"]
	}
	if c.Pod == "" {
		c.Pod = a["io.kubernetes.pod.name"]
	}
	if c.Namespace == "" {
		c.Namespace = a["io.kubernetes.pod.namespace"]
	}
	if len(network) > 0 {
		// An unreadable network.status costs only the addresses (Inspect
		// warns about it, naming the file).
		ips, _ := ParseNetworkStatus(network)
		for _, ip := range ips {
			if !containsString(c.IPs, ip) {
				c.IPs = append(c.IPs, ip)
			}
		}
	}
	return c, nil
}

// ParseNetworkStatus returns the IP addresses (CIDR notation where the
// file has it) in network.status. Podman 4 writes netavark's
// map[network]StatusBlock ({"interfaces": {"eth0": {"subnets":
// [{"ipnet": "10.88.0.2/16"}]}}}); older Podman and CNI write results with
// "ips": [{"address": ...}]. "null" (no network) gives none.
func ParseNetworkStatus(b []byte) ([]string, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", NetworkStatusFile, err)
	}
	var ips []string
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 32 {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if s, ok := x[k].(string); ok && (k == "ipnet" || k == "address" || k == "ip") && isIPOrCIDR(s) {
					if !containsString(ips, s) {
						ips = append(ips, s)
					}
					continue
				}
				walk(x[k], depth+1)
			}
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		}
	}
	walk(v, 0)
	return ips, nil
}

func isIPOrCIDR(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	_, _, err := net.ParseCIDR(s)
	return err == nil
}

// MaxDiffEntries bounds the entries listed from rootfs-diff.tar.
const MaxDiffEntries = 100000

// ParseRootfsDiff lists the entries of rootfs-diff.tar (the files a
// container changed in its root file system) with their sizes. At most
// MaxDiffEntries are returned; the second result says if more were left
// out.
//
// containerd stores the container's rw layer there as its diff service
// wrote it: gzip-compressed (recognised by content, never by name), with
// OCI whiteouts: an entry ".wh.NAME" says NAME was deleted (listed as
// type "deleted", never as a file), ".wh..wh..opq" in a directory says the
// image's contents of that directory are hidden (type "opaque").
func ParseRootfsDiff(r io.Reader) ([]DiffFile, bool, error) {
	var out []DiffFile
	more, err := WalkRootfsDiff(r, func(d DiffEntry) error {
		out = append(out, d.DiffFile)
		return nil
	})
	return out, more, err
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// normTime returns an RFC 3339 time as the engine wrote it, or "" for Go's
// zero time (what Podman writes for a time it never set).
func normTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s // not RFC 3339: shown as written
	}
	if t.IsZero() {
		return ""
	}
	return s
}
