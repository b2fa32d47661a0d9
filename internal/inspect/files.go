package inspect

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mnt"
	skinet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	skunix "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-unix"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// MaxFDs bounds the descriptors listed for one fdinfo image.
const MaxFDs = 1 << 20

// fileTable is files.img by id, as the checkpoint decoded it.
type fileTable struct{ ck *criuimg.Checkpoint }

// entry returns the file with the given id, nil if files.img lacks it.
func (t fileTable) entry(id uint32) *fdinfo.FileEntry {
	e, _ := t.ck.FileEntry(id)
	return e
}

// fsPaths returns the cwd and root of pid from fs-<pid>.img.
func fsPaths(src criuimg.Source, files fileTable, pid uint32) (cwd, root string, err error) {
	name := fmt.Sprintf("fs-%d.img", pid)
	var e *fs.FsEntry
	err = criuimg.EachEntry(src, name, criuimg.MagicFS, func() *fs.FsEntry { return &fs.FsEntry{} },
		func(m *fs.FsEntry) error {
			if e == nil {
				e = m
			}
			return nil
		})
	if err != nil {
		return "", "", err
	}
	if e == nil {
		return "", "", fmt.Errorf("%s: no entry", name)
	}
	cwd, root = files.regPath(e.GetCwdId()), files.regPath(e.GetRootId())
	switch {
	case cwd == "":
		err = fmt.Errorf("%s: file id %d (the cwd) is not a regular file of files.img", name, e.GetCwdId())
	case root == "":
		err = fmt.Errorf("%s: file id %d (the root) is not a regular file of files.img", name, e.GetRootId())
	}
	return cwd, root, err
}

func (t fileTable) regPath(id uint32) string {
	path, _ := t.ck.FilePath(id)
	return path
}

// filesID returns the id of the fd table of pid: ids-<pid>.img, else the
// ids in core-<pid>.img. idsErr says why ids-<pid>.img was not used when
// it exists but is damaged and core-<pid>.img gave the id.
func filesID(src criuimg.Source, task *criucore.CoreEntry, pid uint32) (id uint32, idsErr, err error) {
	var fromIDs *uint32
	err = criuimg.EachEntry(src, fmt.Sprintf("ids-%d.img", pid), criuimg.MagicIDs, func() *criucore.TaskKobjIdsEntry { return &criucore.TaskKobjIdsEntry{} },
		func(m *criucore.TaskKobjIdsEntry) error {
			if fromIDs == nil {
				v := m.GetFilesId()
				fromIDs = &v
			}
			return nil
		})
	if err == nil && fromIDs != nil {
		return *fromIDs, nil, nil
	}
	if err == nil {
		err = fmt.Errorf("ids-%d.img: no entry", pid)
	}
	if ids := task.GetIds(); ids != nil {
		if criuimg.IsNotExist(err) {
			err = nil
		}
		return ids.GetFilesId(), err, nil
	}
	return 0, nil, err
}

// openFiles lists the descriptors of fdinfo-<filesID>.img.
func openFiles(src criuimg.Source, files fileTable, filesID uint32) ([]OpenFile, error) {
	var out []OpenFile
	name := fmt.Sprintf("fdinfo-%d.img", filesID)
	err := criuimg.EachEntry(src, name, criuimg.MagicFdinfo, func() *fdinfo.FdinfoEntry { return &fdinfo.FdinfoEntry{} },
		func(e *fdinfo.FdinfoEntry) error {
			if len(out) >= MaxFDs {
				return fmt.Errorf("%s: more than %d descriptors", name, MaxFDs)
			}
			out = append(out, describeFD(e, files))
			return nil
		})
	sort.Slice(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out, err
}

func describeFD(e *fdinfo.FdinfoEntry, files fileTable) OpenFile {
	o := OpenFile{FD: e.GetFd(), ID: e.GetId(), Type: strings.ToLower(e.GetType().String())}
	f := files.entry(e.GetId())
	if f == nil {
		o.Description = fmt.Sprintf("%s (file %d not in files.img)", o.Type, o.ID)
		return o
	}
	switch e.GetType() {
	case fdinfo.FdTypes_REG:
		o.Type = "file"
		o.Path = f.GetReg().GetName()
		o.Description = o.Path
	case fdinfo.FdTypes_PIPE:
		o.PipeID = f.GetPipe().GetPipeId()
		o.Description = fmt.Sprintf("pipe:[%d]", o.PipeID)
	case fdinfo.FdTypes_FIFO:
		o.PipeID = f.GetFifo().GetPipeId()
		o.Path = files.regPath(f.GetFifo().GetRegfId())
		o.Description = fmt.Sprintf("fifo %s (pipe:[%d])", o.Path, o.PipeID)
	case fdinfo.FdTypes_UNIXSK:
		o.Type = "unix"
		o.Socket = unixSocket(f.GetUsk())
		o.Description = socketLine(o.Socket)
	case fdinfo.FdTypes_INETSK:
		o.Type = "inet"
		o.Socket = inetSocket(f.GetIsk())
		o.Description = socketLine(o.Socket)
	case fdinfo.FdTypes_NETLINKSK:
		o.Type = "netlink"
		o.Socket = &Socket{Family: "netlink", Protocol: fmt.Sprint(f.GetNlsk().GetProtocol()), Inode: f.GetNlsk().GetIno()}
		o.Description = fmt.Sprintf("netlink socket protocol %d", f.GetNlsk().GetProtocol())
	case fdinfo.FdTypes_PACKETSK:
		o.Type = "packet"
		o.Socket = &Socket{Family: "packet", Type: sockType(f.GetPsk().GetType()), Protocol: fmt.Sprintf("%#x", f.GetPsk().GetProtocol())}
		o.Description = fmt.Sprintf("packet socket ifindex %d", f.GetPsk().GetIfindex())
	case fdinfo.FdTypes_EVENTFD:
		o.Description = fmt.Sprintf("eventfd counter %d", f.GetEfd().GetCounter())
	case fdinfo.FdTypes_EVENTPOLL:
		o.Description = "epoll"
	case fdinfo.FdTypes_SIGNALFD:
		o.Description = fmt.Sprintf("signalfd mask %#x", f.GetSgfd().GetSigmask())
	case fdinfo.FdTypes_TIMERFD:
		o.Description = fmt.Sprintf("timerfd clock %d", f.GetTfd().GetClockid())
	case fdinfo.FdTypes_INOTIFY:
		o.Description = "inotify"
	case fdinfo.FdTypes_FANOTIFY:
		o.Description = "fanotify"
	case fdinfo.FdTypes_TTY:
		o.Description = fmt.Sprintf("tty (tty info %d)", f.GetTty().GetTtyInfoId())
	case fdinfo.FdTypes_MEMFD:
		o.Description = fmt.Sprintf("memfd (inode %d)", f.GetMemfd().GetInodeId())
	case fdinfo.FdTypes_NS:
		o.Description = fmt.Sprintf("namespace %d", f.GetNsf().GetNsId())
	case fdinfo.FdTypes_PIDFD:
		o.Description = fmt.Sprintf("pidfd for pid %d", f.GetPidfd().GetNspid())
	case fdinfo.FdTypes_EXT:
		o.Description = "external file (restored by a plugin)"
	default:
		o.Description = o.Type
	}
	return o
}

// Socket families, types and states as Linux numbers them.
const (
	afInet  = 2
	afInet6 = 10
)

func sockType(t uint32) string {
	switch t {
	case 1:
		return "stream"
	case 2:
		return "dgram"
	case 3:
		return "raw"
	case 5:
		return "seqpacket"
	}
	return fmt.Sprint(t)
}

// tcpStates names the kernel's TCP_* states, which unix sockets use too.
var tcpStates = map[uint32]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
	6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}

func sockState(s uint32) string {
	if n, ok := tcpStates[s]; ok {
		return n
	}
	return fmt.Sprint(s)
}

func unixSocket(u *skunix.UnixSkEntry) *Socket {
	s := &Socket{Family: "unix", Type: sockType(u.GetType()), State: sockState(u.GetState()), Peer: u.GetPeer(), Inode: u.GetIno()}
	name := u.GetName()
	switch {
	case len(name) == 0:
	case name[0] == 0:
		s.Local = "@" + strings.TrimRight(string(name[1:]), "\x00")
	default:
		s.Local = strings.TrimRight(string(name), "\x00")
		if u.GetDeleted() {
			s.Local += " (deleted)"
		}
	}
	return s
}

func inetSocket(k *skinet.InetSkEntry) *Socket {
	s := &Socket{Type: sockType(k.GetType()), State: sockState(k.GetState()), Inode: k.GetIno()}
	switch k.GetFamily() {
	case afInet:
		s.Family = "inet"
	case afInet6:
		s.Family = "inet6"
	default:
		s.Family = fmt.Sprint(k.GetFamily())
	}
	switch k.GetProto() {
	case 6:
		s.Protocol = "tcp"
	case 17:
		s.Protocol = "udp"
	case 1:
		s.Protocol = "icmp"
	case 58:
		s.Protocol = "icmpv6"
	default:
		s.Protocol = fmt.Sprint(k.GetProto())
	}
	if s.Protocol == "udp" && s.State == "CLOSE" {
		s.State = "" // unconnected UDP sockets are all "CLOSE"
	}
	s.Local = ipPort(k.GetSrcAddr(), k.GetSrcPort())
	if k.GetDstPort() != 0 || !allZero(k.GetDstAddr()) {
		s.Remote = ipPort(k.GetDstAddr(), k.GetDstPort())
	}
	return s
}

func allZero(a []uint32) bool {
	for _, x := range a {
		if x != 0 {
			return false
		}
	}
	return true
}

// ipPort formats an address CRIU stored as the raw bytes of in_addr or
// in6_addr in 32-bit words (little-endian in the image) with a port.
func ipPort(words []uint32, port uint32) string {
	var b []byte
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	var addr netip.Addr
	switch len(b) {
	case 4:
		addr = netip.AddrFrom4([4]byte(b))
	case 16:
		addr = netip.AddrFrom16([16]byte(b)).Unmap()
	default:
		return fmt.Sprintf("?:%d", port)
	}
	return netip.AddrPortFrom(addr, uint16(port)).String()
}

func socketLine(s *Socket) string {
	var b strings.Builder
	b.WriteString(s.Family)
	if s.Protocol != "" {
		b.WriteString("/" + s.Protocol)
	} else if s.Type != "" {
		b.WriteString("/" + s.Type)
	}
	if s.Local != "" {
		b.WriteString(" " + s.Local)
	}
	if s.Remote != "" {
		b.WriteString(" -> " + s.Remote)
	}
	if s.Peer != 0 {
		fmt.Fprintf(&b, " peer %d", s.Peer)
	}
	if s.State != "" {
		b.WriteString(" " + s.State)
	}
	return b.String()
}

// fsTypes names mnt_entry.fstype (CRIU's fstype enum); 0 means the name is
// in fsname.
var fsTypes = map[uint32]string{
	1: "proc", 2: "sysfs", 3: "devtmpfs", 4: "binfmt_misc", 5: "tmpfs", 6: "devpts",
	7: "simfs", 8: "pstore", 9: "securityfs", 10: "fusectl", 11: "debugfs", 12: "cgroup",
	13: "aufs", 14: "mqueue", 15: "fuse", 16: "auto", 17: "overlay", 18: "autofs",
	19: "tracefs", 23: "cgroup2",
}

// loadMounts reads every mountpoints-<id>.img of src.
func loadMounts(src criuimg.Source) ([]Mount, error) {
	names, err := src.Names()
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, n := range names {
		if !strings.HasPrefix(n, "mountpoints-") || !strings.HasSuffix(n, ".img") {
			continue
		}
		err := criuimg.EachEntry(src, n, criuimg.MagicMnts, func() *mnt.MntEntry { return &mnt.MntEntry{} },
			func(e *mnt.MntEntry) error {
				t := e.GetFsname()
				if t == "" {
					t = fsTypes[e.GetFstype()]
				}
				if t == "" && e.GetFstype() == 0 {
					t = "other" // CRIU's UNSUPPORTED: a bind mount of another file system
				} else if t == "" {
					t = fmt.Sprintf("type %d", e.GetFstype())
				}
				out = append(out, Mount{MountID: e.GetMntId(), ParentID: e.GetParentMntId(), Mountpoint: e.GetMountpoint(),
					Source: e.GetSource(), FSType: t, Root: e.GetRoot(), Options: e.GetOptions()})
				return nil
			})
		if err != nil {
			return out, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].MountID < out[j].MountID })
	return out, nil
}
