package fromcriu_test

import (
	"errors"
	"strings"
	"testing"

	core_aarch64 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-aarch64"
	core_x86 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/internal/regs"
	"github.com/ckpt2core/ckpt2core/internal/regs/fromcriu"
)

func seq32(n int, base uint32) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = base + uint32(i)
	}
	return s
}

func seq64(n int, base uint64) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = base + uint64(i)
	}
	return s
}

// validX86 is a thread_info_x86 as CRIU writes it on a CPU with AVX-512
// and PKRU.
func validX86() *core_x86.ThreadInfoX86 {
	return &core_x86.ThreadInfoX86{
		ClearTidAddr: proto.Uint64(0),
		Gpregs: &core_x86.UserX86RegsEntry{
			R15: proto.Uint64(15), R14: proto.Uint64(14), R13: proto.Uint64(13), R12: proto.Uint64(12),
			Bp: proto.Uint64(0xb9), Bx: proto.Uint64(0xb8), R11: proto.Uint64(11), R10: proto.Uint64(10),
			R9: proto.Uint64(9), R8: proto.Uint64(8), Ax: proto.Uint64(0xa), Cx: proto.Uint64(0xc),
			Dx: proto.Uint64(0xd), Si: proto.Uint64(0x51), Di: proto.Uint64(0xd1), OrigAx: proto.Uint64(202),
			Ip: proto.Uint64(0x401000), Cs: proto.Uint64(0x33), Flags: proto.Uint64(0x246),
			Sp: proto.Uint64(0x7ffc0000), Ss: proto.Uint64(0x2b), FsBase: proto.Uint64(0x7f0000),
			GsBase: proto.Uint64(0), Ds: proto.Uint64(0), Es: proto.Uint64(0), Fs: proto.Uint64(0),
			Gs: proto.Uint64(0), Mode: core_x86.UserX86RegsMode_NATIVE.Enum(),
		},
		Fpregs: &core_x86.UserX86FpregsEntry{
			Cwd: proto.Uint32(0x37f), Swd: proto.Uint32(0), Twd: proto.Uint32(0), Fop: proto.Uint32(0),
			Rip: proto.Uint64(0), Rdp: proto.Uint64(0), Mxcsr: proto.Uint32(0x1f80), MxcsrMask: proto.Uint32(0x2ffff),
			StSpace:  seq32(32, 0x100),
			XmmSpace: seq32(64, 0x200),
			Xsave: &core_x86.UserX86XsaveEntry{
				XstateBv:  proto.Uint64(0x2e6),
				YmmhSpace: seq32(64, 0x300),
				OpmaskReg: seq64(8, 0x400),
				ZmmUpper:  seq64(64, 0x500),
				Hi16Zmm:   seq64(128, 0x600),
				Pkru:      []uint32{0x55555554, 0},
			},
		},
	}
}

func TestX86Valid(t *testing.T) {
	gp, x, err := fromcriu.X86(validX86())
	if err != nil {
		t.Fatal(err)
	}
	if gp.Rbp != 0xb9 || gp.OrigRax != 202 || gp.Rip != 0x401000 || gp.Eflags != 0x246 || gp.Rsi != 0x51 {
		t.Errorf("gpregs %+v", gp)
	}
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"XCR0", x.XCR0, 0x2e7},
		{"XstateBV", x.XstateBV, 0x2e6},
		{"Cwd", uint64(x.FX.Cwd), 0x37f},
		{"MxcsrMask", uint64(x.FX.MxcsrMask), 0x2ffff},
		{"St[1] word 0", uint64(x.FX.St[1][0]) | uint64(x.FX.St[1][1])<<8, 0x104},
		{"Xmm[15] last byte", uint64(x.FX.Xmm[15][12]), 0x3f},
		{"YMMH[2] first byte", uint64(x.YMMH[2][0]), 0x08},
		{"YMMH[2] byte 1", uint64(x.YMMH[2][1]), 0x03},
		{"Opmask[7]", x.Opmask[7], 0x407},
		{"ZMMHi256[1] first byte", uint64(x.ZMMHi256[1][0]), 0x04},
		{"Hi16ZMM[15] last lane", uint64(x.Hi16ZMM[15][56]) | uint64(x.Hi16ZMM[15][57])<<8, 0x67f},
		{"PKRU", uint64(x.PKRU), 0x55555554},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if _, err := x.MarshalBinary(); err != nil {
		t.Errorf("MarshalBinary: %v", err)
	}
}

func TestX86XCR0Rule(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*core_x86.ThreadInfoX86)
		xcr0, bv uint64
	}{
		{"AVX-512 and PKRU", func(*core_x86.ThreadInfoX86) {}, 0x2e7, 0x2e6},
		{"as on the fixtures' AMD CPU (no PKRU)", func(ti *core_x86.ThreadInfoX86) {
			ti.Fpregs.Xsave.Pkru = nil
			ti.Fpregs.Xsave.XstateBv = proto.Uint64(0xa2)
		}, 0xe7, 0xa2},
		{"AVX only", func(ti *core_x86.ThreadInfoX86) {
			xs := ti.Fpregs.Xsave
			xs.OpmaskReg, xs.ZmmUpper, xs.Hi16Zmm, xs.Pkru = nil, nil, nil, nil
			xs.XstateBv = proto.Uint64(0x2)
		}, 0x7, 0x2},
		{"MPX", func(ti *core_x86.ThreadInfoX86) {
			xs := ti.Fpregs.Xsave
			xs.OpmaskReg, xs.ZmmUpper, xs.Hi16Zmm, xs.Pkru = nil, nil, nil, nil
			xs.BndregState, xs.BndcsrState = seq64(8, 1), seq64(8, 1)
			xs.XstateBv = proto.Uint64(0x1b)
		}, 0x1f, 0x1b},
		{"AMX bits dropped", func(ti *core_x86.ThreadInfoX86) {
			ti.Fpregs.Xsave.XstateBv = proto.Uint64(0x602e6)
		}, 0x2e7, 0x2e6},
		{"no xsave", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave = nil }, 0, 0},
	}
	for _, tc := range tests {
		ti := validX86()
		tc.mutate(ti)
		_, x, err := fromcriu.X86(ti)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if x.XCR0 != tc.xcr0 || x.XstateBV != tc.bv {
			t.Errorf("%s: XCR0 %#x XSTATE_BV %#x, want %#x %#x", tc.name, x.XCR0, x.XstateBV, tc.xcr0, tc.bv)
		}
	}
	ti := validX86()
	ti.Fpregs = nil
	if _, x, err := fromcriu.X86(ti); err != nil || x != nil {
		t.Errorf("no fpregs: %v %v", x, err)
	}
}

func TestX86Errors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*core_x86.ThreadInfoX86)
		want   []string // substrings of the error
		is     error
	}{
		{"nil", nil, []string{"thread_info_x86"}, fromcriu.ErrMissing},
		{"no gpregs", func(ti *core_x86.ThreadInfoX86) { ti.Gpregs = nil }, []string{"gpregs"}, fromcriu.ErrMissing},
		{"compat", func(ti *core_x86.ThreadInfoX86) { ti.Gpregs.Mode = core_x86.UserX86RegsMode_COMPAT.Enum() }, []string{"mode"}, fromcriu.ErrCompat},
		{"st_space short", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.StSpace = seq32(31, 0) }, []string{"st_space", "31", "32"}, nil},
		{"st_space long", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.StSpace = seq32(40, 0) }, []string{"st_space", "40", "32"}, nil},
		{"st_space empty", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.StSpace = nil }, []string{"st_space", "0", "32"}, nil},
		{"xmm_space", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.XmmSpace = seq32(63, 0) }, []string{"xmm_space", "63", "64"}, nil},
		{"ymmh_space", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave.YmmhSpace = seq32(65, 0) }, []string{"ymmh_space", "65", "64"}, nil},
		{"opmask_reg", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave.OpmaskReg = seq64(7, 0) }, []string{"opmask_reg", "7", "8"}, nil},
		{"zmm_upper", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave.ZmmUpper = seq64(32, 0) }, []string{"zmm_upper", "32", "64"}, nil},
		{"hi16_zmm", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave.Hi16Zmm = seq64(64, 0) }, []string{"hi16_zmm", "64", "128"}, nil},
		{"pkru", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave.Pkru = []uint32{1} }, []string{"pkru", "1", "2"}, nil},
		{"bndreg_state", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave.BndregState = seq64(4, 0) }, []string{"bndreg_state", "4", "8"}, nil},
		{"bndcsr_state", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave.BndcsrState = seq64(2, 0) }, []string{"bndcsr_state", "2", "8"}, nil},
		{"cwd range", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Cwd = proto.Uint32(0x10000) }, []string{"cwd", "16 bits"}, nil},
		{"fop range", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Fop = proto.Uint32(0xfffff) }, []string{"fop"}, nil},
		{"xstate_bv without data", func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave.Hi16Zmm = nil }, []string{"xstate_bv", "hi16_zmm"}, fromcriu.ErrMissing},
	}
	for _, tc := range tests {
		var ti *core_x86.ThreadInfoX86
		if tc.mutate != nil {
			ti = validX86()
			tc.mutate(ti)
		}
		_, _, err := fromcriu.X86(ti)
		checkError(t, tc.name, err, tc.want, tc.is)
	}
}

// checkError checks that the conversion of case name failed with an
// error that mentions every string of want and, if is is not nil, wraps
// is.
func checkError(t *testing.T, name string, err error, want []string, is error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", name)
		return
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %q does not mention %q", name, err, s)
		}
	}
	if is != nil && !errors.Is(err, is) {
		t.Errorf("%s: error %q is not %v", name, err, is)
	}
}

func validARM64() *core_aarch64.ThreadInfoAarch64 {
	return &core_aarch64.ThreadInfoAarch64{
		ClearTidAddr: proto.Uint64(0),
		Tls:          proto.Uint64(0xffffa1eff8e0),
		Gpregs: &core_aarch64.UserAarch64RegsEntry{
			Regs: seq64(31, 0), Sp: proto.Uint64(0xffffc000), Pc: proto.Uint64(0x400800), Pstate: proto.Uint64(0x80001000),
		},
		Fpsimd: &core_aarch64.UserAarch64FpsimdContextEntry{
			Vregs: seq64(64, 0x1000), Fpsr: proto.Uint32(0x08000001), Fpcr: proto.Uint32(0x00c00000),
		},
	}
}

func TestARM64Valid(t *testing.T) {
	r, f, tls, err := fromcriu.ARM64(validARM64())
	if err != nil {
		t.Fatal(err)
	}
	want := regs.ARM64TLS{TPIDR: 0xffffa1eff8e0}
	if r.X[30] != 30 || r.SP != 0xffffc000 || r.PC != 0x400800 || r.PState != 0x80001000 ||
		f.V[0] != [2]uint64{0x1000, 0x1001} || f.V[31] != [2]uint64{0x103e, 0x103f} ||
		f.FPSR != 0x08000001 || f.FPCR != 0x00c00000 || tls != want {
		t.Errorf("got %+v %+v %+v", r, f, tls)
	}
}

func TestARM64Errors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*core_aarch64.ThreadInfoAarch64)
		want   []string
	}{
		{"nil", nil, []string{"thread_info_aarch64"}},
		{"no gpregs", func(ti *core_aarch64.ThreadInfoAarch64) { ti.Gpregs = nil }, []string{"gpregs"}},
		{"no fpsimd", func(ti *core_aarch64.ThreadInfoAarch64) { ti.Fpsimd = nil }, []string{"fpsimd"}},
		{"regs short", func(ti *core_aarch64.ThreadInfoAarch64) { ti.Gpregs.Regs = seq64(30, 0) }, []string{"regs", "30", "31"}},
		{"regs long", func(ti *core_aarch64.ThreadInfoAarch64) { ti.Gpregs.Regs = seq64(34, 0) }, []string{"regs", "34", "31"}},
		{"vregs", func(ti *core_aarch64.ThreadInfoAarch64) { ti.Fpsimd.Vregs = seq64(32, 0) }, []string{"vregs", "32", "64"}},
	}
	for _, tc := range tests {
		var ti *core_aarch64.ThreadInfoAarch64
		if tc.mutate != nil {
			ti = validARM64()
			tc.mutate(ti)
		}
		_, _, _, err := fromcriu.ARM64(ti)
		checkError(t, tc.name, err, tc.want, nil)
	}
}

// addSeed adds m, marshaled, to the seed corpus of f.
func addSeed(f *testing.F, m proto.Message) {
	f.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

// FuzzX86 feeds arbitrary thread_info_x86 messages to X86: errors are
// fine, panics are not, and a successful conversion marshals.
func FuzzX86(f *testing.F) {
	for _, m := range []func(*core_x86.ThreadInfoX86){
		func(*core_x86.ThreadInfoX86) {},
		func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave = nil },
		func(ti *core_x86.ThreadInfoX86) { ti.Fpregs.Xsave.ZmmUpper = ti.Fpregs.Xsave.ZmmUpper[:3] },
	} {
		ti := validX86()
		m(ti)
		addSeed(f, ti)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ti core_x86.ThreadInfoX86
		if proto.Unmarshal(b, &ti) != nil {
			return
		}
		gp, x, err := fromcriu.X86(&ti)
		if err != nil {
			return
		}
		if _, err := gp.MarshalBinary(); err != nil {
			t.Error(err)
		}
		if x != nil && x.XCR0 != 0 {
			if _, err := x.MarshalBinary(); err != nil {
				t.Errorf("converted state does not marshal: %v", err)
			}
		}
	})
}

// FuzzARM64 feeds arbitrary thread_info_aarch64 messages to ARM64.
func FuzzARM64(f *testing.F) {
	addSeed(f, validARM64())
	f.Fuzz(func(t *testing.T, b []byte) {
		var ti core_aarch64.ThreadInfoAarch64
		if proto.Unmarshal(b, &ti) != nil {
			return
		}
		_, _, _, _ = fromcriu.ARM64(&ti)
	})
}
