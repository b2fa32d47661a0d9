package criuimg

import (
	"errors"
	"fmt"
	"io"
	"strings"

	ipcshm "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-shm"
)

// MagicIPCNSShm is the magic of ipcns-shm-<id>.img (CRIU's IPCNS_SHM_MAGIC).
const MagicIPCNSShm uint32 = 0x46283044

// SysVSegment is one SysV shared memory segment of an IPC namespace, from
// ipcns-shm-<id>.img. Its pages are in pagemap-shmem-<ID>.img (InPagemaps,
// every CRIU since 3.13) like those of shared anonymous memory.
type SysVSegment struct {
	Image      string // the ipcns-shm image
	ID, Key    uint32
	Mode       uint32
	Size       uint64
	InPagemaps bool
}

// SysVPath is the name the kernel gives a mapping of the SysV segment of
// key in /proc/PID/maps and a core's NT_FILE ("/SYSV%08x (deleted)").
func SysVPath(key uint32) string { return fmt.Sprintf("/SYSV%08x (deleted)", key) }

// SysVSegments reads every ipcns-shm-<id>.img of the checkpoint, by
// segment id. An image that cannot be read is an error naming it; the
// segments read before it are returned.
func (c *Checkpoint) SysVSegments() (map[uint32]SysVSegment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sysvOK {
		return c.sysv, c.sysvErr
	}
	c.sysvOK = true
	c.sysv = map[uint32]SysVSegment{}
	names, err := c.Src.Names()
	if err != nil {
		c.sysvErr = err
		return c.sysv, err
	}
	var errs []error
	for _, n := range names {
		if !strings.HasPrefix(n, "ipcns-shm-") || !strings.HasSuffix(n, ".img") {
			continue
		}
		if err := c.readSysV(n); err != nil {
			errs = append(errs, err)
		}
	}
	c.sysvErr = errors.Join(errs...)
	return c.sysv, c.sysvErr
}

func (c *Checkpoint) readSysV(name string) error {
	f, err := c.Src.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := NewReader(f, MagicIPCNSShm)
	if err != nil {
		return err
	}
	for {
		i, off := r.Entry(), r.Offset()
		e := &ipcshm.IpcShmEntry{}
		if err := r.Next(e); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		d := e.GetDesc()
		s := SysVSegment{Image: name, ID: d.GetId(), Key: d.GetKey(), Mode: d.GetMode(), Size: e.GetSize(), InPagemaps: e.GetInPagemaps()}
		c.sysv[s.ID] = s
		if !s.InPagemaps {
			// Before CRIU 3.13 the pages follow the entry, unframed.
			return &FormatError{File: name, Entry: i, Offset: off, Msg: fmt.Sprintf("segment %d: its pages are inline (CRIU before 3.13): not supported; the entries after it are not read", s.ID)}
		}
	}
}
