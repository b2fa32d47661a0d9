// Package termesc makes strings from a checkpoint (comms, paths, command
// lines, errors that quote them) harmless on a terminal. It is the one
// escape the commands and inspect's text report use.
package termesc

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with every character that is not printable (control
// characters, terminal escape sequences' ESC, bidirectional overrides and
// other format characters) and every invalid UTF-8 byte as a Go escape
// (\x1b, \n, \u202e, \xff). A string that needs none is returned as is.
func String(s string) string {
	if strings.IndexFunc(s, notPrintable) < 0 && utf8.ValidString(s) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }
