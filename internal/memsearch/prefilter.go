package memsearch

import (
	"bytes"
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// A required literal is a byte string that every match of a regular
// expression contains: `RANDOM_[0-9]+_KEY` must contain "RANDOM_". Go's
// regexp engine speeds up only a literal prefix, and none under (?i); a
// search that first looks for the required literal (with bytes.Index, over
// an ASCII-lowered copy under (?i)) and runs the engine only near its
// occurrences scans at the speed of the literal search.

// requiredLiteral returns the longest literal every match of expr
// contains, lower-cased when it is matched regardless of ASCII case (fold),
// or nil when there is none worth looking for first or the expression
// holds an empty-width assertion (^, $, \A, \z, \b, \B), whose meaning
// would change at the edges of the stretches the engine is then run on.
func requiredLiteral(expr string) (lit []byte, fold bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil || hasAssertion(re) {
		return nil, false
	}
	lit, fold = required(re.Simplify())
	if len(lit) < 3 {
		return nil, false
	}
	return lit, fold
}

func hasAssertion(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	for _, s := range re.Sub {
		if hasAssertion(s) {
			return true
		}
	}
	return false
}

// required walks the parts of re that every match goes through: a
// concatenation's parts, a group, the body of x+ and x{n,m} with n >= 1.
func required(re *syntax.Regexp) ([]byte, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return literalBytes(re.Rune, re.Flags&syntax.FoldCase != 0)
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []byte
		var bestFold bool
		for _, s := range re.Sub {
			if l, f := required(s); len(l) > len(best) {
				best, bestFold = l, f
			}
		}
		return best, bestFold
	}
	return nil, false
}

// literalBytes returns the longest run of runes whose bytes in memory are
// known: without fold, any rune but U+FFFD (which the engine matches
// against every invalid byte); with fold, runes whose case variants are
// all ASCII (not 'k', whose variants include U+212A KELVIN SIGN, nor 's'
// with U+017F), as lower-case bytes.
func literalBytes(runes []rune, fold bool) ([]byte, bool) {
	var best, cur []byte
	for _, r := range runes {
		ok := r != utf8.RuneError && r <= unicode.MaxRune
		if fold {
			ok = asciiFoldClosed(r)
		}
		if !ok {
			cur = cur[:0]
			continue
		}
		if fold && 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		cur = utf8.AppendRune(cur, r)
		if len(cur) > len(best) {
			best = bytes.Clone(cur)
		}
	}
	return best, fold
}

// asciiFoldClosed reports whether r and every rune (?i) matches it with
// are ASCII.
func asciiFoldClosed(r rune) bool {
	if r >= utf8.RuneSelf {
		return false
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
