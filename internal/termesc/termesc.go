// Package termesc makes strings from a checkpoint (comms, paths, command
// lines, errors that quote them) harmless on a terminal. It is the one
// escape the commands and inspect's text report use.
package termesc

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with every character that is not printable escaped:
// control characters (C0, DEL, C1: ESC, BEL, CSI...) as \xNN, other
// non-printable characters (bidirectional overrides and other format
// characters) as \uNNNN, and every byte of invalid UTF-8 as \xNN. A string
// that needs none is returned as is.
func String(s string) string {
	if strings.IndexFunc(s, notPrintable) < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case notPrintable(r) && r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		case notPrintable(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func notPrintable(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }
