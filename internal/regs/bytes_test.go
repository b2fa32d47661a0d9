package regs

import (
	"bytes"
	"testing"
)

// TestBytesAppendTo: for the types whose marshalling cannot fail, Bytes
// is the layout MarshalBinary gives, of the documented size, and AppendTo
// appends exactly it after what b holds.
func TestBytesAppendTo(t *testing.T) {
	gp := &X86UserRegs{R15: 1, Rip: 0x401000, Gs: 7}
	fx := &X86FXSave{Cwd: 0x37f, Mxcsr: 0x1f80}
	agp := &ARM64UserRegs{SP: 2, PC: 3, PState: 4}
	agp.X[30] = 5
	afp := &ARM64FPSIMD{FPSR: 6, FPCR: 7}
	afp.V[31] = [2]uint64{8, 9}
	tls := &ARM64TLS{TPIDR: 10, TPIDR2: 11}
	for _, tc := range []struct {
		name   string
		size   int
		bytes  func() []byte
		append func([]byte) []byte
		marsh  func() ([]byte, error)
	}{
		{"X86UserRegs", X86UserRegsSize, gp.Bytes, gp.AppendTo, gp.MarshalBinary},
		{"X86FXSave", X86FXSaveSize, fx.Bytes, fx.AppendTo, fx.MarshalBinary},
		{"ARM64UserRegs", ARM64UserRegsSize, agp.Bytes, agp.AppendTo, agp.MarshalBinary},
		{"ARM64FPSIMD", ARM64FPSIMDSize, afp.Bytes, afp.AppendTo, afp.MarshalBinary},
		{"ARM64TLS", ARM64TLSSize, tls.Bytes, tls.AppendTo, tls.MarshalBinary},
		{"ARM64SystemCall", 4, ARM64NoSyscall.Bytes, ARM64NoSyscall.AppendTo, ARM64NoSyscall.MarshalBinary},
		{"ARM64TaggedAddrCtrl", ARM64TaggedAddrCtrlSize, ARM64TaggedAddrCtrl(12).Bytes, ARM64TaggedAddrCtrl(12).AppendTo, ARM64TaggedAddrCtrl(12).MarshalBinary},
	} {
		b := tc.bytes()
		m, err := tc.marsh()
		if err != nil || !bytes.Equal(b, m) || len(b) != tc.size {
			t.Errorf("%s: Bytes %d bytes, MarshalBinary %d bytes (%v), want %d and equal", tc.name, len(b), len(m), err, tc.size)
		}
		prefix := []byte("prefix")
		if got := tc.append(append([]byte{}, prefix...)); !bytes.Equal(got, append(prefix, b...)) {
			t.Errorf("%s: AppendTo does not append Bytes", tc.name)
		}
	}
}
