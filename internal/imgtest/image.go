// Package imgtest writes synthetic CRIU checkpoints for tests and
// benchmarks, and edits real ones for corruption tests.
//
// Images use CRIU's real framing: MagicImgCommon followed by the image's
// own magic (inventory.img has MagicInventory alone), then entries, each a
// little-endian uint32 size followed by that many bytes of protobuf
// (go-criu v8's message types).
//
// Two layers, and helpers for tests on top:
//
//   - framing helpers (WriteImage, AppendEntry, Header, ReadEntries,
//     WriteEntries, RewriteEntry, ...) write or edit single image files;
//   - a builder (New, Checkpoint.AddProcess, Process.AddThread,
//     Process.AddVMA, Process.AddPages, Checkpoint.Write, ...) writes a
//     whole image directory that criuimg.Open accepts;
//   - test helpers (OpenDir, LoadProcess, LoadFrom, Checkpoint.WriteTemp,
//     Checkpoint.Load, ...) open and load checkpoints in a test or
//     benchmark, failing it on any error, like net/http/httptest.
//
// The builder writes what it is told: VMAs and pagemap entries are sorted
// by address unless Process.KeepOrder is set, but never merged, clipped or
// checked, so that tests can build malformed checkpoints too. Page data
// given with AddPagesFunc is generated while writing, one page at a time,
// so checkpoints of many GiB need no memory beyond one page.
//
// Every helper that edits an existing file replaces it (write to a
// temporary file, then rename); it never writes through an existing file.
package imgtest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"google.golang.org/protobuf/proto"
)

// marshal encodes m, allowing missing required fields so that tests can
// write incomplete messages on purpose.
func marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{AllowPartial: true, Deterministic: true}.Marshal(m)
}

// Marshal encodes m like the writers of this package do (required fields
// may be missing). It panics on error, which only a broken message causes.
func Marshal(m proto.Message) []byte {
	b, err := marshal(m)
	if err != nil {
		panic(fmt.Sprintf("imgtest: marshal %T: %v", m, err))
	}
	return b
}

// Header returns the magic header of an image with the given magic: 4
// bytes (MagicInventory) for inventory.img, else MagicImgCommon followed
// by magic.
func Header(magic uint32) []byte {
	if magic == criuimg.MagicInventory {
		return binary.LittleEndian.AppendUint32(nil, magic)
	}
	return HeaderWithCommon(criuimg.MagicImgCommon, magic)
}

// HeaderWithCommon returns an 8-byte header with the given common magic
// (MagicImgCommon or MagicImgService, or anything for tests) and magic.
func HeaderWithCommon(common, magic uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, common)
	return binary.LittleEndian.AppendUint32(b, magic)
}

// AppendEntry writes one entry: the size of m's encoding as a
// little-endian uint32, then the encoding.
func AppendEntry(w io.Writer, m proto.Message) error {
	b, err := marshal(m)
	if err != nil {
		return err
	}
	return AppendRawEntry(w, b)
}

// AppendRawEntry writes one entry with payload b.
func AppendRawEntry(w io.Writer, b []byte) error {
	var sz [4]byte
	binary.LittleEndian.PutUint32(sz[:], uint32(len(b)))
	if _, err := w.Write(sz[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// Frame returns header(magic) followed by one entry per payload.
func Frame(magic uint32, payloads ...[]byte) []byte {
	out := Header(magic)
	for _, p := range payloads {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p)))
		out = append(out, p...)
	}
	return out
}

// WriteImage writes an image file at path: the header for magic, then one
// entry per message.
func WriteImage(path string, magic uint32, msgs ...proto.Message) error {
	return replaceFile(path, func(w io.Writer) error {
		if _, err := w.Write(Header(magic)); err != nil {
			return err
		}
		for _, m := range msgs {
			if err := AppendEntry(w, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// replaceFile writes path through fn into a temporary file in the same
// directory and renames it over path.
func replaceFile(path string, fn func(w io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".imgtest-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	if err = fn(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ReadEntries splits the image at path into its header (4 bytes for
// inventory.img, recognised by its magic, else 8) and the payloads of its
// entries. It fails on a truncated file.
func ReadEntries(path string) (hdr []byte, entries [][]byte, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	n := 8
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == criuimg.MagicInventory {
		n = 4
	}
	if len(b) < n {
		return nil, nil, fmt.Errorf("%s: %d bytes, shorter than the header", path, len(b))
	}
	hdr, b = b[:n], b[n:]
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, nil, fmt.Errorf("%s: truncated size field", path)
		}
		sz := binary.LittleEndian.Uint32(b)
		if uint64(sz) > uint64(len(b)-4) {
			return nil, nil, fmt.Errorf("%s: entry %d: size %d exceeds the file", path, len(entries), sz)
		}
		entries = append(entries, b[4:4+sz])
		b = b[4+sz:]
	}
	return hdr, entries, nil
}

// WriteEntries replaces the image at path with hdr followed by the entries.
func WriteEntries(path string, hdr []byte, entries [][]byte) error {
	return replaceFile(path, func(w io.Writer) error {
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, e := range entries {
			if err := AppendRawEntry(w, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// EditEntries reads the image at path, lets fn change the list of entry
// payloads, and writes the result back.
func EditEntries(path string, fn func(entries [][]byte) ([][]byte, error)) error {
	hdr, ents, err := ReadEntries(path)
	if err != nil {
		return err
	}
	if ents, err = fn(ents); err != nil {
		return err
	}
	return WriteEntries(path, hdr, ents)
}

// ErrNoEntry is returned by the entry editors for an index past the last
// entry.
var ErrNoEntry = errors.New("imgtest: no such entry")

// SetRawEntry replaces the payload of entry index with b.
func SetRawEntry(path string, index int, b []byte) error {
	return EditEntries(path, func(ents [][]byte) ([][]byte, error) {
		if index < 0 || index >= len(ents) {
			return nil, fmt.Errorf("%s: entry %d of %d: %w", path, index, len(ents), ErrNoEntry)
		}
		ents[index] = b
		return ents, nil
	})
}

// DeleteEntry removes entry index.
func DeleteEntry(path string, index int) error {
	return EditEntries(path, func(ents [][]byte) ([][]byte, error) {
		if index < 0 || index >= len(ents) {
			return nil, fmt.Errorf("%s: entry %d of %d: %w", path, index, len(ents), ErrNoEntry)
		}
		return append(ents[:index], ents[index+1:]...), nil
	})
}

// InsertEntry inserts m as entry index (index == number of entries
// appends).
func InsertEntry(path string, index int, m proto.Message) error {
	b, err := marshal(m)
	if err != nil {
		return err
	}
	return EditEntries(path, func(ents [][]byte) ([][]byte, error) {
		if index < 0 || index > len(ents) {
			return nil, fmt.Errorf("%s: entry %d of %d: %w", path, index, len(ents), ErrNoEntry)
		}
		ents = append(ents, nil)
		copy(ents[index+1:], ents[index:])
		ents[index] = b
		return ents, nil
	})
}

// RewriteEntry decodes entry index of the image at path as an M, calls
// mutate on it and writes it back (missing required fields allowed both
// ways). Example:
//
//	imgtest.RewriteEntry(filepath.Join(dir, "mm-1.img"), 0, func(m *mm.MmEntry) {
//		m.Vmas[3].Start = proto.Uint64(1)
//	})
func RewriteEntry[M proto.Message](path string, index int, mutate func(M)) error {
	return EditEntries(path, func(ents [][]byte) ([][]byte, error) {
		if index < 0 || index >= len(ents) {
			return nil, fmt.Errorf("%s: entry %d of %d: %w", path, index, len(ents), ErrNoEntry)
		}
		var zero M
		m := zero.ProtoReflect().Type().New().Interface().(M)
		if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(ents[index], m); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", path, index, err)
		}
		mutate(m)
		b, err := marshal(m)
		if err != nil {
			return nil, err
		}
		ents[index] = b
		return ents, nil
	})
}

// ReadEntry decodes entry index of the image at path as an M.
func ReadEntry[M proto.Message](path string, index int) (M, error) {
	var zero M
	_, ents, err := ReadEntries(path)
	if err != nil {
		return zero, err
	}
	if index < 0 || index >= len(ents) {
		return zero, fmt.Errorf("%s: entry %d of %d: %w", path, index, len(ents), ErrNoEntry)
	}
	m := zero.ProtoReflect().Type().New().Interface().(M)
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(ents[index], m); err != nil {
		return zero, fmt.Errorf("%s: entry %d: %w", path, index, err)
	}
	return m, nil
}

// EntryOffset returns the byte offset of entry index's size field in the
// image at path (the offset criuimg reports for that entry).
func EntryOffset(path string, index int) (int64, error) {
	hdr, ents, err := ReadEntries(path)
	if err != nil {
		return 0, err
	}
	if index < 0 || index > len(ents) {
		return 0, fmt.Errorf("%s: entry %d of %d: %w", path, index, len(ents), ErrNoEntry)
	}
	off := int64(len(hdr))
	for _, e := range ents[:index] {
		off += 4 + int64(len(e))
	}
	return off, nil
}

// Truncate replaces the file at path with its first size bytes.
func Truncate(path string, size int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if size > int64(len(b)) {
		return fmt.Errorf("%s: cannot truncate %d bytes to %d", path, len(b), size)
	}
	return replaceFile(path, func(w io.Writer) error { _, err := w.Write(b[:size]); return err })
}

// PatchBytes replaces the file at path with a copy in which the bytes at
// off are b (the file grows if off+len(b) is past its end).
func PatchBytes(path string, off int64, b []byte) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if end := off + int64(len(b)); end > int64(len(old)) {
		old = append(old, make([]byte, end-int64(len(old)))...)
	}
	copy(old[off:], b)
	return replaceFile(path, func(w io.Writer) error { _, err := w.Write(old); return err })
}

// CopyImages copies the regular files of the directory src into dst
// (created if needed), so that a test can edit a real fixture's images.
// Files are copied, never linked.
func CopyImages(dst, src string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(dst, e.Name()), filepath.Join(src, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
