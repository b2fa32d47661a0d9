package carve

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// MaxNameLen bounds the file names FileName makes (NAME_MAX is 255).
const MaxNameLen = 200

// FileName is a file name for a: its kind, pid and fd, and its path or
// label with every byte outside [A-Za-z0-9._+-] escaped as %XX (so "/"
// and ".." cannot survive, and no name is empty, hidden or a control
// sequence), cut to MaxNameLen bytes with a hash of the whole kept. The
// name is one path component.
func FileName(a Artifact) string {
	what := a.Path
	if what == "" {
		what = a.Label
	}
	var b strings.Builder
	b.WriteString(string(a.Kind))
	if a.Pid != 0 {
		fmt.Fprintf(&b, "-%d", a.Pid)
		if a.FD >= 0 {
			fmt.Fprintf(&b, "-fd%d", a.FD)
		}
	}
	if what != "" {
		b.WriteByte('-')
		b.WriteString(Escape(what))
	}
	n := b.String()
	if len(n) > MaxNameLen {
		h := sha256.Sum256([]byte(n))
		cut := MaxNameLen - 17
		for cut > 0 && n[cut-1] == '%' || cut > 1 && n[cut-2] == '%' { // do not split an escape
			cut--
		}
		n = n[:cut] + "~" + hex.EncodeToString(h[:8])
	}
	return n
}

// Escape escapes every byte of s outside [A-Za-z0-9._+-] as %XX.
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.' || c == '_' || c == '+' || c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
