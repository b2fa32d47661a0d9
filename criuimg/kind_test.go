package criuimg_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/coredump"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestVMAKindOracle classifies the mappings of every process that has a
// kernel core dump among the fixtures (core.<pid>.gz) against what the
// kernel recorded, not the images: the mapping holding each thread's
// stack pointer (NT_PRSTATUS pr_reg: rsp, or sp on arm64) is a stack, as
// is the one holding AT_EXECFN (the initial stack, where the kernel
// copies the executable's name); the one at AT_SYSINFO_EHDR is the vDSO;
// the files of NT_FILE are files. Every kind's name is its own.
func TestVMAKindOracle(t *testing.T) {
	cores, err := filepath.Glob(filepath.Join("..", "testdata", "*", "*", "core.*.gz"))
	if err != nil || len(cores) < 5 {
		t.Fatalf("kernel cores %v, %v", cores, err)
	}
	for _, gz := range cores {
		dir := filepath.Dir(gz)
		pid, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(gz), "core."), ".gz"), 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir)+"/"+strconv.Itoa(int(pid)), func(t *testing.T) {
			oracle, err := coredump.Open(imgtest.Gunzip(t, gz, t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			defer oracle.Close()
			p := imgtest.LoadProcess(t, filepath.Join(dir, "images"), uint32(pid))
			want := map[uint64]criuimg.VMAKind{} // an address, the kind of its mapping
			spReg := 19                          // rsp in user_regs_struct
			if p.Arch == criuimg.ArchARM64 {
				spReg = 31 // x0..x30, sp
			}
			threads := oracle.Threads()
			for _, th := range threads {
				want[th.Regs[spReg]] = criuimg.KindStack
			}
			for tag, kind := range map[uint64]criuimg.VMAKind{31: criuimg.KindStack, 33: criuimg.KindVDSO} { // AT_EXECFN, AT_SYSINFO_EHDR
				if a, ok := oracle.AuxvValue(tag); ok {
					want[a] = kind
				}
			}
			files, _, err := oracle.Files()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if !strings.HasPrefix(f.Name, "/memfd:") && !strings.HasPrefix(f.Name, "/dev/zero") && !strings.HasPrefix(f.Name, "/SYSV") {
					want[f.Start] = criuimg.KindFile
				}
			}
			if len(want) < len(threads)+3 {
				t.Fatalf("only %d addresses to check", len(want))
			}
			for addr, kind := range want {
				v, ok := p.FindVMA(addr)
				if !ok {
					t.Errorf("%#x (%v): in no mapping", addr, kind)
					continue
				}
				if got := p.VMAKind(v); got != kind || got.String() != map[criuimg.VMAKind]string{criuimg.KindStack: "stack", criuimg.KindVDSO: "vdso", criuimg.KindFile: "file"}[kind] {
					t.Errorf("%#x: mapping [%#x-%#x) %q is %v, want %v", addr, v.Start, v.End, v.Path, got, kind)
				}
			}
		})
	}
}
