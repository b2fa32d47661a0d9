// Package regs holds the kernel's register and process-status structures
// that go into ELF core notes (x86_64 and arm64), as plain Go types with
// MarshalBinary methods. It does no I/O and knows nothing of CRIU; the
// converters from CRIU's messages live in regs/fromcriu.
package regs
