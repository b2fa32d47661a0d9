package inspect

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSyscallTableGenerated: syscalls_table.go is what 'go generate'
// writes from the x/sys version in go.mod, and Go tools see it as
// generated (ast.IsGenerated).
func TestSyscallTableGenerated(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "table.go")
	if out, err := exec.Command("go", "run", "./internal/gensyscalls", fresh).CombinedOutput(); err != nil {
		t.Fatalf("gensyscalls: %v\n%s", err, out)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("syscalls_table.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("syscalls_table.go is not what go generate writes: run 'go generate ./inspect'")
	}
	f, err := parser.ParseFile(token.NewFileSet(), "syscalls_table.go", got, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if !ast.IsGenerated(f) {
		t.Error("syscalls_table.go lacks a '// Code generated ... DO NOT EDIT.' header")
	}
	if SyscallName(0, 0) != "" {
		t.Error("an unknown architecture has names")
	}
}
