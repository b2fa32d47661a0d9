package inspect

//go:generate go run ./internal/gensyscalls syscalls_table.go

import "github.com/ckpt2core/ckpt2core/criuimg"

// SyscallName returns the name of system call nr on arch ("" if unknown).
// The tables (syscalls_table.go) are the kernel's complete lists for
// x86_64 and for arm64 (the asm-generic numbering).
func SyscallName(arch criuimg.Arch, nr int64) string {
	switch arch {
	case criuimg.ArchX86_64:
		return x86_64SyscallNames[int(nr)]
	case criuimg.ArchARM64:
		return arm64SyscallNames[int(nr)]
	}
	return ""
}
