package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/coredump"
)

var staticC = fixture{arch: "x86_64", name: "static-c"}

// TestZombie (f): static-c has an unreaped zombie (pid 1538, garbage thread
// id in pstree.img, no mm/pagemap): the CLI writes no core for it, says so
// on stderr, and still converts the two live processes.
func TestZombie(t *testing.T) {
	info := loadFixture(t, staticC)
	var zombie int
	for _, p := range info.procs {
		if p.zombie {
			zombie = p.pid
		}
	}
	if zombie != 1538 {
		t.Fatalf("manifest zombie %d, expected 1538", zombie)
	}
	res := runCLI(t, staticC.images())
	// A zombie has no memory or registers to convert; skipping it is not a
	// failure, so every live process converted means exit 0.
	if res.exit != 0 {
		t.Errorf("exit %d\nstderr:\n%s", res.exit, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(res.out, "core.1538")); err == nil {
		t.Error("core.1538 written for the zombie")
	}
	if !strings.Contains(res.stderr, "1538") || !strings.Contains(strings.ToLower(res.stderr), "zombie") {
		t.Errorf("stderr does not report zombie 1538:\n%s", res.stderr)
	}
	if names := dirNames(t, res.out); fmt.Sprint(names) != "[core.1535 core.1539]" {
		t.Errorf("output directory holds %v, want [core.1535 core.1539]", names)
	}
}

// dirNames returns the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestPidSelection (f): --pid selects processes; repeated --pid adds more.
func TestPidSelection(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--pid", "1539"}, []string{"core.1539"}},
		{[]string{"--pid", "1535"}, []string{"core.1535"}},
		{[]string{"--pid", "1535", "--pid", "1539"}, []string{"core.1535", "core.1539"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := runCLI(t, staticC.images(), tc.args...)
			if res.exit != 0 {
				t.Fatalf("exit %d\nstderr:\n%s", res.exit, res.stderr)
			}
			if names := dirNames(t, res.out); fmt.Sprint(names) != fmt.Sprint(tc.want) {
				t.Errorf("output directory holds %v, want %v", names, tc.want)
			}
			if lines := nonEmptyLines(res.stdout); len(lines) != len(tc.want) {
				t.Errorf("stdout has %d lines, want %d:\n%s", len(lines), len(tc.want), res.stdout)
			}
			for _, n := range tc.want {
				c, err := coredump.Open(filepath.Join(res.out, n))
				if err != nil {
					t.Errorf("%s: %v", n, err)
					continue
				}
				ps, err := c.PSInfo()
				if err != nil || fmt.Sprintf("core.%d", ps.Pid) != n {
					t.Errorf("%s: psinfo %+v, %v", n, ps, err)
				}
				c.Close()
			}
		})
	}
	// A pid that is not in the checkpoint, and the zombie, are errors.
	for _, pid := range []string{"4242", "1538"} {
		res := runCLI(t, staticC.images(), "--pid", pid)
		if res.exit == 0 {
			t.Errorf("--pid %s: exit 0, want an error (stdout %q)", pid, res.stdout)
		}
		if _, err := os.Stat(filepath.Join(res.out, "core."+pid)); err == nil {
			t.Errorf("--pid %s wrote a core", pid)
		}
	}
}

// TestFixtureSelfCheck runs the memory, pagemap, secret and gdb checks with
// the oracle in place of our core. It needs no converter: it proves that the
// checkpoint decoding in these tests (pagemap page counts of both CRIU
// versions, PE_PRESENT, pages-*.img offsets, rseq areas) and the gdb parsing
// agree with the oracles, so that failures of TestOracle are the converter's.
func TestFixtureSelfCheck(t *testing.T) {
	eachFixture(t, func(t *testing.T, fx fixture, info fixtureInfo) {
		withSecrets := secretPids(t, fx, info)
		eachOracle(t, fx, info, func(t *testing.T, p process, path string, c *coredump.Core) {
			pr := pair{fx: fx, info: info, proc: p, ours: c, oracle: c,
				oursPath: path, oraclePath: path, selfCheck: true}
			t.Run("pagemap", pr.testPagemap)
			if withSecrets[p.pid] {
				t.Run("secrets", pr.testSecrets)
			}
			t.Run("rseq", func(t *testing.T) {
				// glibc registers a struct rseq per thread; the Go
				// runtime does not.
				want := len(p.tids)
				if strings.HasPrefix(fx.name, "go-") {
					want = 0
				}
				if n := len(pr.rseqAreas(t)); n != want {
					t.Errorf("%d rseq areas for %d threads, want %d", n, len(p.tids), want)
				}
			})
			t.Run("gdb", pr.testGDB)
			if fx.arch == "arm64" {
				t.Run("facts-regs", pr.testFactsRegs)
			}
		})
	})
}
