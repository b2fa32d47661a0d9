package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// hostVariant is a build of the CLI for another host: GOARCH and how to run
// it here.
type hostVariant struct {
	goarch string
	runner string // user-mode emulator, "" to run the binary directly
	why    string
}

// crossVariants are the foreign hosts TestCrossHost tries: a 64-bit host of
// the other architecture (required: arm64 under qemu-aarch64-static on
// x86_64, and the reverse), a big-endian one (s390x) and a 32-bit one (386,
// run natively by an x86_64 kernel).
func crossVariants() []hostVariant {
	v := []hostVariant{{"arm64", "qemu-aarch64-static", "aarch64 host"}}
	if runtime.GOARCH == "arm64" {
		v[0] = hostVariant{"amd64", "qemu-x86_64-static", "x86_64 host"}
	}
	v = append(v, hostVariant{"s390x", "qemu-s390x-static", "big-endian host"})
	if runtime.GOARCH == "amd64" {
		v = append(v, hostVariant{"386", "", "32-bit host (int is 32 bits)"})
	} else {
		v = append(v, hostVariant{"386", "qemu-i386-static", "32-bit host (int is 32 bits)"})
	}
	return v
}

// TestCrossHost converts every fixture, x86_64 and arm64, with the CLI built
// for other hosts and run there (under qemu-user where needed): the cores
// must be byte-identical to this host's, and the CLI must say the same.
// Nothing of the host (byte order, word size, page size) may leak into a
// core.
func TestCrossHost(t *testing.T) {
	native := cli(t)
	type result struct {
		dir    string
		stdout string
		exit   int
	}
	run := func(t *testing.T, argv0 []string, images string) result {
		out := t.TempDir()
		args := append(append([]string{}, argv0[1:]...), "-q", images, "-o", out)
		so, _, exit := runExit(t, argv0[0], args...)
		return result{dir: out, stdout: strings.ReplaceAll(so, out, "OUT"), exit: exit}
	}
	want := map[string]result{}
	for _, fx := range fixtures {
		if fx.pending == "" {
			want[fx.String()] = run(t, []string{native}, fx.images())
		}
	}
	for _, v := range crossVariants() {
		t.Run(v.goarch, func(t *testing.T) {
			t.Parallel()
			var argv0 []string
			if v.runner != "" {
				r, err := exec.LookPath(v.runner)
				if err != nil {
					if v.goarch == "arm64" || v.goarch == "amd64" {
						t.Skipf("%s not installed (package qemu-user-static): cannot run the %s build on this host", v.runner, v.goarch)
					}
					t.Skipf("%s not installed: %s check skipped", v.runner, v.why)
				}
				argv0 = []string{r}
			}
			bin := filepath.Join(t.TempDir(), "ckpt2core-"+v.goarch)
			cmd := exec.Command("go", "build", "-o", bin, "./cmd/ckpt2core")
			cmd.Dir = repoRoot()
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+v.goarch, "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOARCH=%s go build ./cmd/ckpt2core: %v\n%s", v.goarch, err, out)
			}
			argv0 = append(argv0, bin)
			if v.runner == "" {
				if err := exec.Command(bin, "--help").Run(); errors.Is(err, syscall.ENOEXEC) {
					t.Skipf("this kernel does not run %s binaries: %v", v.goarch, err)
				}
			}
			for _, fx := range fixtures {
				w, ok := want[fx.String()]
				if !ok {
					continue
				}
				got := run(t, argv0, fx.images())
				if got.exit != w.exit || got.stdout != w.stdout {
					t.Errorf("%s on a %s: exit %d, stdout:\n%s\nnative build: exit %d, stdout:\n%s", fx, v.why, got.exit, got.stdout, w.exit, w.stdout)
				}
				compareDirs(t, fmt.Sprintf("%s on a %s", fx, v.why), got.dir, w.dir)
			}
		})
	}
}

// compareDirs fails unless dirs a and b hold the same files with the same
// bytes.
func compareDirs(t *testing.T, what, a, b string) {
	t.Helper()
	names := func(d string) []string {
		es, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range es {
			n = append(n, e.Name())
		}
		return n
	}
	na, nb := names(a), names(b)
	if fmt.Sprint(na) != fmt.Sprint(nb) {
		t.Errorf("%s: wrote %v, native build %v", what, na, nb)
		return
	}
	if len(na) == 0 {
		t.Errorf("%s: no core written", what)
	}
	for _, n := range na {
		x, err := os.ReadFile(filepath.Join(a, n))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			i := firstDiff(x, y)
			t.Errorf("%s: %s differs from the native build's at byte %d (%d and %d bytes)", what, n, i, len(x), len(y))
		}
	}
}
