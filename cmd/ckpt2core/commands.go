package main

import (
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// commandLine is a line of the usage text that names a command:
// "  ckpt2core NAME ...". The usage text is the one list of commands: a
// command added there (with its case in runWith) is known here too.
var commandLine = regexp.MustCompile(`(?m)^  ckpt2core ([a-z][a-z0-9-]*)\b`)

// knownCommands returns the commands the usage text lists.
func knownCommands() []string {
	var names []string
	for _, m := range commandLine.FindAllStringSubmatch(usage, -1) {
		if !isCommandWord(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}

func isCommandWord(names []string, s string) bool { return slices.Contains(names, s) }

// unknownCommand reports arg, the first argument, if it is neither a
// command nor a path that exists (nor looks like one: it holds no '/'),
// with the nearest command as a suggestion. ok is false when arg is to be
// taken as the CHECKPOINT of a conversion.
func unknownCommand(arg string, stderr io.Writer) (status int, ok bool) {
	if arg == "" || strings.HasPrefix(arg, "-") || strings.Contains(arg, "/") {
		return 0, false
	}
	if _, err := os.Lstat(arg); err == nil {
		return 0, false
	}
	names := knownCommands()
	if isCommandWord(names, arg) {
		return 0, false
	}
	msg := "unknown command " + quote(arg)
	if near := nearest(arg, names); near != "" {
		msg += " (did you mean " + quote(near) + "?)"
	}
	return usageError(stderr, "", exitUsage, "%s", msg), true
}

// nearest returns the name closest to s by edit distance, if it is close
// enough to be what was meant (at most 2 edits, and fewer than half of s).
func nearest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestD && 2*d < len(s) {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: the
// insertions, deletions, substitutions and swaps of two neighbouring bytes
// that turn a into b ("grpe" is 1 from "grep").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			d[i][j] = min(d[i-1][j-1]+c, d[i-1][j]+1, d[i][j-1]+1)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
