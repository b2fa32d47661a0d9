package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

var (
	grepCounter = imgtest.Testdata("x86_64/counter/images")
	grepStatic  = imgtest.Testdata("x86_64/static-c/images")
	grepThreads = imgtest.Testdata("x86_64/threads-c/images")
)

func runGrepCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"grep"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestGrepCLI(t *testing.T) {
	keyLines := "3760 python3 0x7f6d0fb6fbad [anon]+0x6fbad  RANDOM_1432_KEY\n" +
		"3760 python3 0x7f6d0fba0410 [anon]+0xa0410  RANDOM_1432_KEY\n"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // exact, when not ""
		lines  []string
		stderr string // a substring of stderr, when not ""
	}{
		{name: "literal", args: []string{"-C", "0", "RANDOM_1432_KEY", grepCounter}, code: 0, stdout: keyLines},
		{name: "hex spaced", args: []string{"-C0", "--hex", "52 41 4e 44 4f 4d 5f 31 34 33 32 5f 4b 45 59", grepCounter}, code: 0, stdout: keyLines},
		{name: "hex packed", args: []string{"--context=0", "--hex", "0x52414E444F4D5F313433325F4B4559", grepCounter}, code: 0, stdout: keyLines},
		{name: "regex", args: []string{"-C", "0", "--regex", `RANDOM_[0-9]{4}_KEY`, grepCounter}, code: 0, stdout: keyLines},
		{name: "ignore case", args: []string{"-C", "0", "-i", "random_1432_key", grepCounter}, code: 0, stdout: keyLines},
		{name: "flags after arguments", args: []string{"RANDOM_1432_KEY", grepCounter, "-C", "0", "--pid", "3760"}, code: 0, stdout: keyLines},
		{name: "context", args: []string{"--pid", "3760", "RANDOM_1432_KEY", grepCounter}, code: 0, lines: []string{
			`3760 python3 0x7f6d0fb6fbad [anon]+0x6fbad  ..."GET /secret?RANDOM_1432_KEY HTTP/1.1" 200 -`,
			"3760 python3 0x7f6d0fba0410 [anon]+0xa0410  ................RANDOM_1432_KEY.....m..........",
		}},
		{name: "max count per process", args: []string{"-C", "0", "-m", "1", "RANDOM_1432_KEY", grepCounter}, code: 0,
			stdout: "3760 python3 0x7f6d0fb6fbad [anon]+0x6fbad  RANDOM_1432_KEY\n"},
		{name: "max count, two processes", args: []string{"-C", "0", "--max-count", "1", "STATIC_HEAP_SECRET_77aa", grepStatic}, code: 0,
			stdout: "1535 static-c 0x258ca6d0 [heap]+0x16d0  STATIC_HEAP_SECRET_77aa\n1539 static-c 0x258ca6d0 [heap]+0x16d0  STATIC_HEAP_SECRET_77aa\n"},
		{name: "shared memory", args: []string{"-C", "2", "CHILD_WROTE_SHARED", grepStatic}, code: 0,
			stdout: "1535 static-c 0x7f751a13a064 [shared]+0x2064  ..CHILD_WROTE_SHARED..\n1539 static-c 0x7f751a13a064 [shared]+0x2064  ..CHILD_WROTE_SHARED..\n"},
		{name: "pid selects", args: []string{"-C", "0", "--pid", "1539", "CHILD_WROTE_SHARED", grepStatic}, code: 0,
			stdout: "1539 static-c 0x7f751a13a064 [shared]+0x2064  CHILD_WROTE_SHARED\n"},
		{name: "executable data", args: []string{"-C", "0", "THREADS_DATA_SECRET_6b2d", grepThreads}, code: 0,
			stdout: "32484 threads-c 0x5608f8fa90a0 /opt/fixture/bin/threads-c+0xa0  THREADS_DATA_SECRET_6b2d\n"},
		{name: "stack", args: []string{"-C", "0", "THREADS_ENV_TOKEN", grepThreads}, code: 0, lines: []string{"32484 threads-c 0x7ffe0f355fbc [stack]+0x20fbc  THREADS_ENV_TOKEN"}},
		{name: "not found", args: []string{"NOT_IN_ANY_PROCESS_0000", grepCounter}, code: 1, stdout: ""},
		{name: "lower case without -i", args: []string{"random_1432_key", grepCounter}, code: 1, stdout: ""},
		{name: "zombie asked for", args: []string{"--pid", "1538", "STATIC", grepStatic}, code: 1, stdout: "", stderr: "zombie"},
		{name: "json nothing", args: []string{"--json", "NOT_IN_ANY_PROCESS_0000", grepCounter}, code: 1, stdout: "[]\n"},

		{name: "help", args: []string{"--help"}, code: 0, lines: nil, stderr: ""},
		{name: "no arguments", args: nil, code: 2, stderr: "want PATTERN and CHECKPOINT"},
		{name: "one argument", args: []string{"KEY"}, code: 2, stderr: "want PATTERN and CHECKPOINT"},
		{name: "unknown flag", args: []string{"--nope", "KEY", grepCounter}, code: 2, stderr: "unknown flag"},
		{name: "hex and regex", args: []string{"--hex", "--regex", "41", grepCounter}, code: 2, stderr: "exclude"},
		{name: "bad hex", args: []string{"--hex", "4g", grepCounter}, code: 2, stderr: "--hex"},
		{name: "odd hex", args: []string{"--hex", "414", grepCounter}, code: 2, stderr: "odd"},
		{name: "bad regex", args: []string{"--regex", "(", grepCounter}, code: 2, stderr: "regular expression"},
		{name: "empty-matching regex", args: []string{"--regex", "a*", grepCounter}, code: 2, stderr: "empty string"},
		{name: "empty pattern", args: []string{"", grepCounter}, code: 2, stderr: "empty pattern"},
		{name: "negative context", args: []string{"-C", "-1", "KEY", grepCounter}, code: 2, stderr: "context"},
		{name: "unknown pid", args: []string{"--pid", "99", "KEY", grepCounter}, code: 2, stderr: "pid 99 is not in the checkpoint"},
		{name: "no checkpoint", args: []string{"KEY", "/nonexistent/ckpt"}, code: 2, stderr: "/nonexistent/ckpt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runGrepCLI(tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if tt.lines == nil && (tt.stdout != "" || tt.code != 0) && stdout != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.stdout)
			}
			if tt.lines != nil {
				got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
				if strings.Join(got, "\n") != strings.Join(tt.lines, "\n") {
					t.Errorf("stdout lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.lines, "\n"))
				}
			}
			if tt.stderr != "" && !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q does not say %q", stderr, tt.stderr)
			}
			if tt.code == 0 && tt.name != "help" && stderr != "" {
				t.Errorf("stderr not empty: %s", stderr)
			}
		})
	}
}

func TestGrepHelp(t *testing.T) {
	code, stdout, _ := runGrepCLI("--help")
	for _, want := range []string{"Usage: ckpt2core grep", "--hex", "--regex", "--max-count", "--json", "Examples:", "Exit status: 0", "never spans", "4096"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("grep --help does not mention %q", want)
		}
	}
	if code != 0 {
		t.Errorf("grep --help: exit status %d", code)
	}
	var out bytes.Buffer
	run([]string{"--help"}, &out, &out)
	if !strings.Contains(out.String(), "ckpt2core grep") {
		t.Error("ckpt2core --help does not list grep")
	}
}

func TestGrepJSON(t *testing.T) {
	code, stdout, stderr := runGrepCLI("--json", "-C", "4", "CHILD_WROTE_SHARED", grepStatic)
	if code != 0 {
		t.Fatalf("exit status %d: %s", code, stderr)
	}
	var hits []map[string]any
	if err := json.Unmarshal([]byte(stdout), &hits); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, stdout)
	}
	if len(hits) != 2 {
		t.Fatalf("%d hits, want 2", len(hits))
	}
	for i, pid := range []float64{1535, 1539} {
		h := hits[i]
		want := map[string]any{
			"pid": pid, "comm": "static-c", "address": "0x7f751a13a064",
			"mapping": "[shared]", "mapping_start": "0x7f751a138000", "offset": float64(8292),
			"match": "CHILD_WROTE_SHARED", "match_hex": "4348494c445f57524f54455f534841524544",
			"before": `\x00\x00\x00\x00`, "before_hex": "00000000",
			"after": `\x00\x00\x00\x00`, "after_hex": "00000000",
			"context": "....CHILD_WROTE_SHARED....",
		}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("hit %d: %s = %#v, want %#v", i, k, h[k], v)
			}
		}
		if len(h) != len(want) {
			t.Errorf("hit %d has fields %v, want exactly %d", i, h, len(want))
		}
	}
}

func TestGrepEscape(t *testing.T) {
	if got, want := escapeBytes([]byte("a\\b\x00\xff~")), `a\\b\x00\xff~`; got != want {
		t.Errorf("escapeBytes = %q, want %q", got, want)
	}
	for in, want := range map[string]string{"de ad be ef": "deadbeef", "DEADBEEF": "deadbeef", "0xdeadbeef": "deadbeef", "de:ad-be\tef": "deadbeef"} {
		b, err := parseHexPattern(in)
		if err != nil || string(b) != "\xde\xad\xbe\xef" {
			t.Errorf("parseHexPattern(%q) = %x, %v; want %s", in, b, err, want)
		}
	}
}
