package coredump

import (
	"encoding/binary"
	"fmt"
)

// XSAVE state components (bit numbers of XCR0 / xstate_bv).
const (
	XFeatureX87      = 0
	XFeatureSSE      = 1
	XFeatureYMM      = 2 // AVX: upper halves of ymm0..15
	XFeatureBNDRegs  = 3
	XFeatureBNDCSR   = 4
	XFeatureOpmask   = 5 // AVX-512 k0..k7
	XFeatureZMMHi256 = 6 // AVX-512 upper halves of zmm0..15
	XFeatureHi16ZMM  = 7 // AVX-512 zmm16..31
	XFeaturePKRU     = 9
)

// Offsets of the legacy region and the XSAVE header.
const (
	xsaveXCR0Offset   = 464 // sw_reserved[0..7]: XCR0 as Linux's ptrace/core writes it
	xsaveHeaderOffset = 512
	xsaveHeaderSize   = 64
)

// StandardXSaveOffsets are the offsets of the extended components in the
// standard (non-compacted) XSAVE format of Intel CPUs, used when a core has
// no NT_X86_XSAVE_LAYOUT note.
var StandardXSaveOffsets = map[int]uint32{
	XFeatureYMM:      576,
	XFeatureBNDRegs:  960,
	XFeatureBNDCSR:   1024,
	XFeatureOpmask:   1088,
	XFeatureZMMHi256: 1152,
	XFeatureHi16ZMM:  1664,
	XFeaturePKRU:     2688,
}

// xsaveSizes are the architectural sizes of the decoded components.
var xsaveSizes = map[int]uint32{
	XFeatureYMM:      256,
	XFeatureOpmask:   64,
	XFeatureZMMHi256: 512,
	XFeatureHi16ZMM:  1024,
	XFeaturePKRU:     4,
}

// XSaveComponent is one entry of NT_X86_XSAVE_LAYOUT
// (struct x86_xfeat_component).
type XSaveComponent struct {
	Type   uint32 // component number (XFeature*)
	Size   uint32 // bytes
	Offset uint32 // offset in the NT_X86_XSTATE descriptor
	Flags  uint32
}

// DecodeXSaveLayout decodes an NT_X86_XSAVE_LAYOUT descriptor.
func DecodeXSaveLayout(layout []byte) ([]XSaveComponent, error) {
	if len(layout)%16 != 0 {
		return nil, fmt.Errorf("coredump: NT_X86_XSAVE_LAYOUT size %d is not a multiple of 16", len(layout))
	}
	le := binary.LittleEndian
	out := make([]XSaveComponent, 0, len(layout)/16)
	for i := 0; i < len(layout); i += 16 {
		out = append(out, XSaveComponent{
			Type: le.Uint32(layout[i:]), Size: le.Uint32(layout[i+4:]),
			Offset: le.Uint32(layout[i+8:]), Flags: le.Uint32(layout[i+12:]),
		})
	}
	return out, nil
}

// XState holds register values decoded from an x86 XSAVE area, independent
// of its layout. Components whose bit is clear in XstateBV hold their init
// values (zero; FCW 0x37f for x87).
type XState struct {
	// x87 environment and registers (FXSAVE legacy region).
	FCW, FSW  uint16
	FTW       uint8 // abridged tag word
	FOP       uint16
	FIP, FDP  uint64
	ST        [8][10]byte // st0..st7 (80-bit)
	MXCSR     uint32      // saved whenever SSE or AVX state is saved
	MXCSRMask uint32
	// XMM holds xmm0..15 (low 128 bits of ymm/zmm0..15).
	XMM [16][16]byte
	// YMMH holds bits 128..255 of ymm0..15 (AVX component).
	YMMH [16][16]byte
	// Opmask holds k0..k7.
	Opmask [8]uint64
	// ZMMHi256 holds bits 256..511 of zmm0..15.
	ZMMHi256 [16][32]byte
	// Hi16ZMM holds zmm16..31 entirely.
	Hi16ZMM [16][64]byte
	// PKRU is the protection-key rights register.
	PKRU uint32
	// XstateBV is the XSAVE header's xstate_bv.
	XstateBV uint64
	// XCR0 is the enabled-feature mask Linux stores at byte 464.
	XCR0 uint64
}

// YMM returns the full 256-bit ymm register i (0..15), lowest byte first.
func (x *XState) YMM(i int) [32]byte {
	var r [32]byte
	copy(r[:16], x.XMM[i][:])
	copy(r[16:], x.YMMH[i][:])
	return r
}

// ZMM returns the full 512-bit zmm register i (0..31), lowest byte first.
func (x *XState) ZMM(i int) [64]byte {
	var r [64]byte
	if i >= 16 {
		return x.Hi16ZMM[i-16]
	}
	copy(r[:16], x.XMM[i][:])
	copy(r[16:32], x.YMMH[i][:])
	copy(r[32:], x.ZMMHi256[i][:])
	return r
}

// DecodeXState decodes an NT_X86_XSTATE descriptor. Component offsets come
// from layout (an NT_X86_XSAVE_LAYOUT descriptor) when it is non-nil, else
// from StandardXSaveOffsets. A component set in xstate_bv whose bytes are
// missing is an error.
func DecodeXState(xstate []byte, layout []byte) (*XState, error) {
	le := binary.LittleEndian
	if len(xstate) < xsaveHeaderOffset+xsaveHeaderSize {
		return nil, fmt.Errorf("coredump: XSAVE area has %d bytes, need at least %d", len(xstate), xsaveHeaderOffset+xsaveHeaderSize)
	}
	x := &XState{
		XCR0:     le.Uint64(xstate[xsaveXCR0Offset:]),
		XstateBV: le.Uint64(xstate[xsaveHeaderOffset:]),
	}
	bv := x.XstateBV
	if bv&(1<<XFeatureX87) != 0 {
		x.FCW = le.Uint16(xstate[0:])
		x.FSW = le.Uint16(xstate[2:])
		x.FTW = xstate[4]
		x.FOP = le.Uint16(xstate[6:])
		x.FIP = le.Uint64(xstate[8:])
		x.FDP = le.Uint64(xstate[16:])
		for i := range x.ST {
			copy(x.ST[i][:], xstate[32+16*i:])
		}
	} else {
		x.FCW = 0x37f
	}
	x.MXCSR = le.Uint32(xstate[24:])
	x.MXCSRMask = le.Uint32(xstate[28:])
	if bv&(1<<XFeatureSSE) != 0 {
		for i := range x.XMM {
			copy(x.XMM[i][:], xstate[160+16*i:])
		}
	}

	offsets := StandardXSaveOffsets
	sizes := map[int]uint32{}
	if layout != nil {
		comps, err := DecodeXSaveLayout(layout)
		if err != nil {
			return nil, err
		}
		offsets = map[int]uint32{}
		for _, c := range comps {
			if c.Type < 64 {
				offsets[int(c.Type)] = c.Offset
				sizes[int(c.Type)] = c.Size
			}
		}
	}
	comp := func(f int) ([]byte, error) {
		if bv&(1<<f) == 0 {
			return nil, nil
		}
		off, ok := offsets[f]
		if !ok {
			return nil, fmt.Errorf("coredump: XSAVE component %d is in xstate_bv %#x but not in the layout", f, bv)
		}
		need := xsaveSizes[f]
		if s, ok := sizes[f]; ok && s < need {
			return nil, fmt.Errorf("coredump: XSAVE layout gives component %d size %d, want at least %d", f, s, need)
		}
		if uint64(off)+uint64(need) > uint64(len(xstate)) {
			return nil, fmt.Errorf("coredump: XSAVE component %d at [%d, +%d) past the area's %d bytes", f, off, need, len(xstate))
		}
		return xstate[off : off+need], nil
	}
	if b, err := comp(XFeatureYMM); err != nil {
		return nil, err
	} else if b != nil {
		for i := range x.YMMH {
			copy(x.YMMH[i][:], b[16*i:])
		}
	}
	if b, err := comp(XFeatureOpmask); err != nil {
		return nil, err
	} else if b != nil {
		for i := range x.Opmask {
			x.Opmask[i] = le.Uint64(b[8*i:])
		}
	}
	if b, err := comp(XFeatureZMMHi256); err != nil {
		return nil, err
	} else if b != nil {
		for i := range x.ZMMHi256 {
			copy(x.ZMMHi256[i][:], b[32*i:])
		}
	}
	if b, err := comp(XFeatureHi16ZMM); err != nil {
		return nil, err
	} else if b != nil {
		for i := range x.Hi16ZMM {
			copy(x.Hi16ZMM[i][:], b[64*i:])
		}
	}
	if b, err := comp(XFeaturePKRU); err != nil {
		return nil, err
	} else if b != nil {
		x.PKRU = le.Uint32(b)
	}
	return x, nil
}

// ARM64FP is the decoded arm64 NT_PRFPREG (struct user_fpsimd_state).
type ARM64FP struct {
	V    [32][16]byte // v0..v31, lowest byte first
	FPSR uint32
	FPCR uint32
}

// DecodeARM64FP decodes an arm64 NT_PRFPREG descriptor (528 bytes).
func DecodeARM64FP(d []byte) (*ARM64FP, error) {
	if len(d) < 32*16+8 {
		return nil, fmt.Errorf("coredump: NT_PRFPREG has %d bytes, need %d", len(d), 32*16+8)
	}
	f := &ARM64FP{}
	for i := range f.V {
		copy(f.V[i][:], d[16*i:])
	}
	f.FPSR = binary.LittleEndian.Uint32(d[512:])
	f.FPCR = binary.LittleEndian.Uint32(d[516:])
	return f, nil
}
