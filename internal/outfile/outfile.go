// Package outfile writes output files safely: each is an anonymous file
// (O_TMPFILE) of its directory until complete, mode 0600, and gets its
// name only then, by linkat(2) (which never replaces a name and never
// follows a symlink there) or by rename(2) (which replaces the name, a
// symlink included, without following it). Where the filesystem has no
// O_TMPFILE the file is created under a temporary name (O_CREAT|O_EXCL|
// O_NOFOLLOW) and renamed. Every name is resolved against the directory's
// descriptor and must be a single path component, so nothing is written
// outside it. A file that is not committed is removed by Discard; with
// O_TMPFILE even SIGKILL leaves nothing behind.
package outfile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrName is returned for a name that is not a single path component.
var ErrName = errors.New("not a file name")

// File is an output file being written in a directory.
type File struct {
	*os.File
	dir    *os.File
	prefix string // of temporary names
	tmp    string // the temporary name in dir; "" for an anonymous file
	closed bool
	done   bool // committed or discarded

	// renameNoReplace is renameat2(RENAME_NOREPLACE); tests replace it.
	renameNoReplace func(olddirfd int, oldpath string, newdirfd int, newpath string) error
}

// Create creates a new output file in the directory dir (an open
// directory), mode 0600. tmpPrefix begins the temporary names it may use
// in dir (a random suffix follows); they should not clash with the
// names the caller commits to.
func Create(dir *os.File, tmpPrefix string) (*File, error) {
	return create(dir, tmpPrefix, false)
}

func create(dir *os.File, tmpPrefix string, noTmpfile bool) (*File, error) {
	if strings.ContainsAny(tmpPrefix, "/\x00") {
		return nil, fmt.Errorf("temporary prefix %q: %w", tmpPrefix, ErrName)
	}
	o := &File{dir: dir, prefix: tmpPrefix, renameNoReplace: renameNoReplace}
	dfd := int(dir.Fd())
	var fd int
	var err error = unix.ENOTSUP
	if !noTmpfile {
		fd, err = unix.Openat(dfd, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	}
	if err != nil {
		// No O_TMPFILE here: a new file under a temporary name.
		for range 100 {
			o.tmp, err = o.tempName()
			if err != nil {
				return nil, err
			}
			fd, err = unix.Openat(dfd, o.tmp, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
			if !errors.Is(err, unix.EEXIST) {
				break
			}
		}
		if err != nil {
			return nil, err
		}
	}
	o.File = os.NewFile(uintptr(fd), dir.Name()+"/(output file)")
	// The umask may have taken bits from 0600.
	if err := o.File.Chmod(0o600); err != nil {
		o.Discard()
		return nil, err
	}
	return o, nil
}

// TempName is the file's temporary name in its directory while it has
// one (no O_TMPFILE, not yet committed), else "".
func (o *File) TempName() string {
	if o.done {
		return ""
	}
	return o.tmp
}

func (o *File) tempName() (string, error) {
	var buf [8]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%x", o.prefix, buf), nil
}

// target checks that the file may still be committed, to name, and
// returns its directory's descriptor.
func (o *File) target(name string) (int, error) {
	if o.done {
		return -1, os.ErrClosed
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return -1, fmt.Errorf("%q: %w", name, ErrName)
	}
	return int(o.dir.Fd()), nil
}

func (o *File) close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	return o.File.Close()
}

// Link closes the complete file and gives it the name name in its
// directory. It never replaces an existing name (the error is then
// fs.ErrExist, syscall.EEXIST) and never follows a symlink there. After
// an error the file stays uncommitted: Link may be tried with another
// name, and Discard removes it.
func (o *File) Link(name string) error {
	dfd, err := o.target(name)
	if err != nil {
		return err
	}
	if o.tmp == "" {
		if err := linkAnon(o.File, dfd, name); err != nil {
			return err
		}
		if err := o.close(); err != nil {
			unix.Unlinkat(dfd, name, 0)
			return err
		}
		o.done = true
		return nil
	}
	if err := o.close(); err != nil {
		return err
	}
	err = o.renameNoReplace(dfd, o.tmp, dfd, name)
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) {
		// The filesystem lacks RENAME_NOREPLACE: link(2) does not
		// replace either.
		if err = unix.Linkat(dfd, o.tmp, dfd, name, 0); err == nil {
			unix.Unlinkat(dfd, o.tmp, 0)
		}
	}
	if err != nil {
		return err
	}
	o.done = true
	return nil
}

// Replace closes the complete file and gives it the name name in its
// directory, replacing what has that name (rename(2): a symlink there is
// replaced, not followed; a directory is not replaced, syscall.EISDIR).
func (o *File) Replace(name string) error {
	dfd, err := o.target(name)
	if err != nil {
		return err
	}
	if o.tmp == "" {
		// Name the anonymous file first, then rename that name.
		for range 100 {
			var tmp string
			if tmp, err = o.tempName(); err != nil {
				return err
			}
			if err = linkAnon(o.File, dfd, tmp); err == nil {
				o.tmp = tmp
				break
			}
			if !errors.Is(err, syscall.EEXIST) {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
	if err := o.close(); err != nil {
		return err
	}
	if err := unix.Renameat(dfd, o.tmp, dfd, name); err != nil {
		return err
	}
	o.done = true
	return nil
}

// Discard closes the file and removes it unless it was committed. It may
// be called more than once, and after Link or Replace (then it does
// nothing): defer it right after Create.
func (o *File) Discard() {
	if o.done {
		return
	}
	o.done = true
	o.close()
	if o.tmp != "" {
		unix.Unlinkat(int(o.dir.Fd()), o.tmp, 0)
	}
}

// linkAnon links the anonymous file f as name in the directory dfd.
func linkAnon(f *os.File, dfd int, name string) error {
	err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), dfd, name, unix.AT_SYMLINK_FOLLOW)
	if errors.Is(err, syscall.ENOENT) {
		// No /proc: AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH).
		err = unix.Linkat(int(f.Fd()), "", dfd, name, unix.AT_EMPTY_PATH)
	}
	return err
}

func renameNoReplace(olddirfd int, oldpath string, newdirfd int, newpath string) error {
	return unix.Renameat2(olddirfd, oldpath, newdirfd, newpath, unix.RENAME_NOREPLACE)
}

// OpenDir opens the directory path for Create (following a symlink to
// it, as a path would).
func OpenDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
}
