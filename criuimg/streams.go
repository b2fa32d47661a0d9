package criuimg

import (
	"fmt"
	"io"

	pipedata "github.com/checkpoint-restore/go-criu/v8/crit/images/pipe-data"
	skpacket "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-packet"
	tcpstream "github.com/checkpoint-restore/go-criu/v8/crit/images/tcp-stream"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"google.golang.org/protobuf/proto"
)

// Magics of the images of queued data (criu/include/magic.h).
const (
	MagicPipesData uint32 = 0x56453709
	MagicFifoData  uint32 = 0x59333054
	MagicSkQueues  uint32 = 0x56264026
	MagicTCPStream uint32 = 0x51465506
	MagicTTYData   uint32 = 0x59413026
)

// Span locates raw bytes inside an image: CRIU writes queued data (pipe
// buffers, socket queues) right after the entry describing it.
type Span struct {
	Image  string
	Entry  int   // the entry the bytes follow
	Offset int64 // of the first byte in the image
	Len    int64
}

// Open returns a reader of the span's bytes, read from the image as it
// goes; closing it closes the image.
func (s Span) Open(src Source) (io.ReadCloser, error) {
	f, err := src.Open(s.Image)
	if err != nil {
		return nil, err
	}
	if s.Offset < 0 || s.Len < 0 || s.Offset > f.Size() || s.Len > f.Size()-s.Offset {
		f.Close()
		return nil, &FormatError{File: s.Image, Entry: s.Entry, Offset: s.Offset, Msg: fmt.Sprintf("%d bytes at offset %d beyond the image's %d bytes", s.Len, s.Offset, f.Size())}
	}
	return &spanReader{io.NewSectionReader(f, s.Offset, s.Len), f}, nil
}

type spanReader struct {
	*io.SectionReader
	f File
}

func (r *spanReader) Close() error { return r.f.Close() }

// readWithData walks an image whose entries are each followed by raw
// bytes: dataLen gives the number of bytes an entry claims, which must lie
// in the image, and fn gets the entry and the span of its bytes.
func readWithData[M proto.Message](src Source, name string, magic uint32, newMsg func() M, dataLen func(M) uint64, fn func(m M, span Span) error) error {
	return walk(src, name, magic, nil, newMsg, func(r *Reader, i int, off int64, m M) error {
		n := dataLen(m)
		if left := r.f.Size() - r.off; n > uint64(left) {
			return &FormatError{File: name, Entry: i, Offset: off, Msg: fmt.Sprintf("%d bytes of data claimed, %d bytes left in the image", n, left)}
		}
		span := Span{Image: name, Entry: i, Offset: r.off, Len: int64(n)}
		r.off += int64(n)
		return fn(m, span)
	})
}

// PipeData is the buffered contents of one pipe or FIFO
// (pipes-data.img, fifo-data.img).
type PipeData struct {
	PipeID uint32 // the pipe's id (pipe_id of files.img's pipe or FIFO entry)
	Size   uint32 // the pipe's buffer size (F_GETPIPE_SZ), 0 if not recorded
	Data   Span
}

// ReadPipeData decodes pipes-data.img (fifo false) or fifo-data.img (fifo
// true); a missing image gives nothing.
func (c *Checkpoint) ReadPipeData(fifo bool) ([]PipeData, error) {
	name, magic := "pipes-data.img", MagicPipesData
	if fifo {
		name, magic = "fifo-data.img", MagicFifoData
	}
	var out []PipeData
	err := readWithData(c.Src, name, magic, func() *pipedata.PipeDataEntry { return &pipedata.PipeDataEntry{} },
		func(e *pipedata.PipeDataEntry) uint64 { return uint64(e.GetBytes()) },
		func(e *pipedata.PipeDataEntry, s Span) error {
			out = append(out, PipeData{PipeID: e.GetPipeId(), Size: e.GetSize(), Data: s})
			return nil
		})
	if err != nil && !IsNotExist(err) {
		return nil, fmt.Errorf("%s: %w", c.Src, err)
	}
	return out, nil
}

// QueuedPacket is one packet (or stream segment) queued on a socket
// (sk-queues.img): unix and packet sockets' receive queues.
type QueuedPacket struct {
	SocketID uint32 // files.img id of the socket (id_for)
	Data     Span
}

// ReadSocketQueues decodes sk-queues.img; a missing image gives nothing.
func (c *Checkpoint) ReadSocketQueues() ([]QueuedPacket, error) {
	var out []QueuedPacket
	err := readWithData(c.Src, "sk-queues.img", MagicSkQueues, func() *skpacket.SkPacketEntry { return &skpacket.SkPacketEntry{} },
		func(e *skpacket.SkPacketEntry) uint64 { return uint64(e.GetLength()) },
		func(e *skpacket.SkPacketEntry, s Span) error {
			out = append(out, QueuedPacket{SocketID: e.GetIdFor(), Data: s})
			return nil
		})
	if err != nil && !IsNotExist(err) {
		return nil, fmt.Errorf("%s: %w", c.Src, err)
	}
	return out, nil
}

// TCPStream is tcp-stream-<inode>.img: an established TCP socket's
// queues. Inq holds the bytes received and not yet read by the process;
// Outq the bytes written and not yet acknowledged (its last UnsentLen
// bytes not yet sent).
type TCPStream struct {
	Image           string
	InqSeq, OutqSeq uint32
	UnsentLen       uint32
	Inq, Outq       Span
}

// TCPStreamImageName is the name of the TCP stream image of the socket
// with inode ino (CRIU names it in hex).
func TCPStreamImageName(ino uint32) string { return fmt.Sprintf("tcp-stream-%x.img", ino) }

// ReadTCPStream decodes tcp-stream-<ino in hex>.img. The queues' claimed
// lengths are checked against the image's size; bytes after the queues
// are an error.
func (c *Checkpoint) ReadTCPStream(ino uint32) (*TCPStream, error) {
	name := TCPStreamImageName(ino)
	f, err := c.Src.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ts, err := readTCPStream(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Src, err)
	}
	return ts, nil
}

func readTCPStream(f File) (*TCPStream, error) {
	name := f.Name()
	r, err := NewReader(f, MagicTCPStream)
	if err != nil {
		return nil, err
	}
	e := &tcpstream.TcpStreamEntry{}
	if err := r.next(e, nil); err != nil {
		if err == io.EOF {
			return nil, &FormatError{File: name, Entry: 0, Offset: r.off, Msg: "no tcp_stream_entry"}
		}
		return nil, err
	}
	left := f.Size() - r.off
	in, out := int64(e.GetInqLen()), int64(e.GetOutqLen())
	if in+out > left {
		return nil, &FormatError{File: name, Entry: 0, Offset: 8, Msg: fmt.Sprintf("queues of %d and %d bytes claimed, %d bytes left in the image", in, out, left)}
	}
	if e.GetUnsqLen() > e.GetOutqLen() {
		return nil, &FormatError{File: name, Entry: 0, Offset: 8, Msg: fmt.Sprintf("%d unsent bytes in a send queue of %d", e.GetUnsqLen(), out)}
	}
	if in+out != left {
		return nil, &FormatError{File: name, Entry: 1, Offset: r.off + in + out, Msg: fmt.Sprintf("%d bytes after the queues", left-in-out)}
	}
	return &TCPStream{Image: name, InqSeq: e.GetInqSeq(), OutqSeq: e.GetOutqSeq(), UnsentLen: e.GetUnsqLen(),
		Inq:  Span{Image: name, Entry: 0, Offset: r.off, Len: in},
		Outq: Span{Image: name, Entry: 0, Offset: r.off + in, Len: out}}, nil
}

// TTYData is the unread input buffered in a pty (tty-data.img).
type TTYData struct {
	TTYID uint32 // the tty's id (tty-info.img)
	Entry int
	Data  []byte
}

// MaxTTYData bounds the bytes of one tty-data.img entry (a pty buffer
// holds at most a few pages).
const MaxTTYData = 1 << 20

// ReadTTYData decodes tty-data.img; a missing image gives nothing.
func (c *Checkpoint) ReadTTYData() ([]TTYData, error) {
	var out []TTYData
	err := readAll(c.Src, "tty-data.img", MagicTTYData, &limits{maxSize: MaxTTYData + 64}, func() *tty.TtyDataEntry { return &tty.TtyDataEntry{} },
		func(i int, _ int64, e *tty.TtyDataEntry) error {
			out = append(out, TTYData{TTYID: e.GetTtyId(), Entry: i, Data: e.GetData()})
			return nil
		})
	if err != nil && !IsNotExist(err) {
		return nil, fmt.Errorf("%s: %w", c.Src, err)
	}
	return out, nil
}
