package main

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/coredump"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestGrepThreadStacks: grep names the stacks of threads-c's threads
// "[stack]" (criuimg's Process.VMAKind), not "[anon]". The threads' stack
// pointers are the kernel's (core.32484.gz, NT_PRSTATUS rsp); the
// mappings holding them are those of mm-32484.img.
func TestGrepThreadStacks(t *testing.T) {
	base := filepath.Join("..", "..", "testdata", "x86_64", "threads-c")
	oracle, err := coredump.Open(imgtest.Gunzip(t, filepath.Join(base, "core.32484.gz"), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer oracle.Close()
	p := imgtest.LoadProcess(t, filepath.Join(base, "images"), 32484)
	type span struct{ start, end uint64 }
	var stacks []span
	for _, th := range oracle.Threads() {
		if v, ok := p.FindVMA(th.Regs[19]); ok && v.Path == "" {
			stacks = append(stacks, span{v.Start, v.End})
		}
	}
	if len(stacks) != 4 {
		t.Fatalf("%d anonymous stacks, want one per thread (4)", len(stacks))
	}
	var stdout, stderr bytes.Buffer
	if status := run([]string{"grep", "--hex", "ff ff ff ff ff ff", filepath.Join(base, "images")}, &stdout, &stderr); status != 0 {
		t.Fatalf("status %d: %s", status, stderr.String())
	}
	inStack := 0
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.Fields(line) // PID COMM 0xADDRESS MAPPING+0xOFFSET CONTEXT
		addr, err := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		for _, s := range stacks {
			if s.start <= addr && addr < s.end {
				inStack++
				if !strings.HasPrefix(f[3], "[stack]+") {
					t.Errorf("a hit in a thread's stack [%#x-%#x): %q", s.start, s.end, line)
				}
			}
		}
	}
	if inStack == 0 {
		t.Errorf("no hit in the threads' stacks:\n%s", stdout.String())
	}
}
