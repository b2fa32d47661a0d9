package inspect

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Open opens the images of src as criuimg.Open does, except that a
// damaged files.img (which criuimg.Open refuses) does not stop it: the
// checkpoint is then opened without files.img, and Inspect reads what it
// can of it and says what it could not (paths of mappings, of open files,
// of the cwd). Only a damaged inventory.img or pstree.img is an error.
func Open(src criuimg.Source) (*criuimg.Checkpoint, error) {
	ck, err := criuimg.Open(src)
	if err == nil {
		return ck, nil
	}
	ck2, err2 := criuimg.Open(&withoutFiles{Source: src, err: err})
	if err2 != nil {
		return nil, err // not (only) files.img
	}
	return ck2, nil
}

// filesImg is the name of the file table image.
const filesImg = "files.img"

// withoutFiles is a Source without files.img, whose damage err made
// criuimg.Open fail.
type withoutFiles struct {
	criuimg.Source
	err error
}

func (w *withoutFiles) Open(name string) (criuimg.File, error) {
	if name == filesImg {
		return nil, &fs.PathError{Op: "open", Path: filesImg, Err: fs.ErrNotExist}
	}
	return w.Source.Open(name)
}

func (w *withoutFiles) Names() ([]string, error) {
	names, err := w.Source.Names()
	return slices.DeleteFunc(names, func(n string) bool { return n == filesImg }), err
}

// filePath returns the path of regular file id: from ck, else (files.img
// damaged) from what could be read of files.img.
func filePath(ck *criuimg.Checkpoint, files fileTable, id uint32) (string, bool) {
	if p, ok := ck.FilePath(id); ok {
		return p, true
	}
	if f := files[id]; f != nil && f.GetReg() != nil {
		return f.GetReg().GetName(), true
	}
	return "", false
}

// damagedFilesWarning says what a damaged files.img costs, if ck was
// opened without it; "" otherwise.
func damagedFilesWarning(ck *criuimg.Checkpoint, read int) string {
	w, ok := ck.Src.(*withoutFiles)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%v: only its first %d entries are read: the other files' paths (mappings, open files, cwd, executable) are unknown", w.err, read)
}

// nameFiles gives the file mappings that criuimg could not name (ck was
// opened without its damaged files.img) the paths that what was read of
// files.img has, and drops criuimg's warning about each one it names.
func nameFiles(p *proc, files fileTable) {
	for i := range p.vmas {
		v := &p.vmas[i]
		f := files[v.FileID]
		if v.Status&(criuimg.VMAFilePrivate|criuimg.VMAFileShared) == 0 || !strings.HasPrefix(v.Path, "[unknown file ") || f.GetReg() == nil {
			continue
		}
		v.Path = f.GetReg().GetName()
		about := fmt.Sprintf("vma [%#x-%#x): file id %d is not in files.img", v.Start, v.End, v.FileID)
		p.warnings = slices.DeleteFunc(p.warnings, func(w string) bool { return strings.Contains(w, about) })
	}
	if p.exe == "" && p.mm != nil {
		p.exe = files.regPath(p.mm.GetExeFileId())
	}
}
