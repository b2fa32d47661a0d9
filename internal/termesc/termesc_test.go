package termesc

import "testing"

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"python3", "python3"},
		{"/memfd:x (deleted)", "/memfd:x (deleted)"},
		{"naïve…", "naïve…"},
		{"a\x1b[2Jb", `a\x1b[2Jb`},
		{"tab\there", `tab\x09here`},
		{"nl\n", `nl\x0a`},
		{"bel\a", `bel\x07`},
		{"rtl\u202eexe", `rtl\u202eexe`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"\x7f", `\x7f`},
		{"\u0085", `\x85`},
		{"csi\u009bx\x9by", `csi\x9bx\x9by`},
		{"zw\u200bsp", `zw\u200bsp`},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
