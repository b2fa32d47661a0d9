package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPodOtherCommands: every command that opens a checkpoint takes
// --container (triage, diff, list, inspect --extract: only the chosen
// container's members are extracted, laid out as a container checkpoint);
// without it they name the pod's containers.
func TestPodOtherCommands(t *testing.T) {
	arch := podArchive(t, "")
	if code, stdout, stderr := convertCLI(t, "triage", "--container", "web", arch); code != exitOK || !strings.Contains(stdout, "/bin/busybox") {
		t.Errorf("triage --container web: exit %d: %s", code, stderr)
	}
	if code, _, stderr := convertCLI(t, "triage", arch); code == exitOK || !strings.Contains(stderr, "pod checkpoint of 2 containers (counter, web): choose one with --container NAME") {
		t.Errorf("triage on the pod: exit %d: %q", code, stderr)
	}
	if code, stdout, stderr := convertCLI(t, "diff", "--container", "web", arch, arch); code != exitOK || !strings.Contains(stdout, "no differences") {
		t.Errorf("diff --container web: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := convertCLI(t, "list", "--container", "counter", arch); code != exitOK || !strings.Contains(stdout, "counter") {
		t.Errorf("list --container counter: exit %d: %s", code, stderr)
	}
	root := t.TempDir()
	x := filepath.Join(root, "x")
	if code, _, stderr := convertCLI(t, "inspect", "--extract", x, arch); code != exitUsage || !strings.Contains(stderr, "--extract on a pod checkpoint needs --container") {
		t.Errorf("inspect --extract on the pod: exit %d: %q", code, stderr)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("inspect --extract on the pod left %d entries", len(ents))
	}
	if code, _, stderr := convertCLI(t, "inspect", "--extract", x, "--container", "web", arch); code != exitOK {
		t.Fatalf("inspect --extract --container web: exit %d: %s", code, stderr)
	}
	for _, name := range []string{"checkpoint/inventory.img", "config.dump", "rootfs-diff.tar"} {
		if _, err := os.Stat(filepath.Join(x, name)); err != nil {
			t.Errorf("extracted: %v", err)
		}
	}
	ents, _ := os.ReadDir(x)
	for _, e := range ents {
		if strings.Contains(e.Name(), podCounterID) || e.Name() == "pod.options" {
			t.Errorf("extracted %s: not the web container's", e.Name())
		}
	}
}

// TestPodWithoutContainer: a command that reads one container, given a
// pod checkpoint without --container, is a usage error (exit 2) naming
// the pod's containers, whatever the command.
func TestPodWithoutContainer(t *testing.T) {
	arch := podArchive(t, "")
	out := t.TempDir()
	for _, args := range [][]string{
		{"triage", arch},
		{"report", "-o", filepath.Join(out, "r.html"), arch},
		{"extract", "-o", filepath.Join(out, "x"), arch},
		{"cat", arch, "/etc/passwd"},
		{"gdb", "--pid", "1", arch},
	} {
		t.Run(args[0], func(t *testing.T) {
			code, _, stderr := convertCLI(t, args...)
			if code != exitUsage || !strings.Contains(stderr, "pod checkpoint of 2 containers (counter, web): choose one with --container NAME") {
				t.Errorf("%v: exit %d, want %d: %q", args, code, exitUsage, stderr)
			}
		})
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("left %d entries in the output directory", len(ents))
	}
}

// TestPodList: list and inspect --summary show a pod checkpoint as one row
// per container (the pod's file, each container's name and processes),
// not as a skipped file.
func TestPodList(t *testing.T) {
	arch := podArchive(t, "")
	for _, cmd := range [][]string{{"list", "--json", arch}, {"inspect", "--summary", "--json", arch}} {
		podRows(t, arch, cmd)
	}
}

func podRows(t *testing.T, arch string, args []string) {
	t.Helper()
	code, stdout, stderr := convertCLI(t, args...)
	if code != exitOK || strings.Contains(stderr, "skipped") {
		t.Fatalf("%v: exit %d: %s", args, code, stderr)
	}
	var rows []checkpointRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("list --json: %v\n%s", err, stdout)
	}
	var names []string
	for _, r := range rows {
		if r.File != arch || r.Processes == 0 {
			t.Errorf("row %+v: want file %s and its processes", r, arch)
		}
		names = append(names, r.Container)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"counter", "web"}) {
		t.Errorf("containers %v, want counter, web", names)
	}
}
