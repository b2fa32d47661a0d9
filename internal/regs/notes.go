package regs

// ELF note types (n_type) as the Linux kernel writes them in core files,
// from include/uapi/linux/elf.h. Notes of type NT_PRSTATUS, NT_PRFPREG,
// NT_PRPSINFO, NT_AUXV, NT_SIGINFO and NT_FILE carry the name "CORE"; the
// architecture-specific ones (NT_X86_*, NT_ARM_*) carry the name "LINUX".
const (
	NT_PRSTATUS = 1 // struct elf_prstatus, one per thread, first note of a thread
	NT_PRFPREG  = 2 // user_fpregs_struct (x86: 512-byte FXSAVE area; arm64: user_fpsimd_state); readelf calls it NT_FPREGSET
	NT_PRPSINFO = 3 // struct elf_prpsinfo, once per process
	NT_AUXV     = 6 // the auxiliary vector, once per process

	NT_SIGINFO = 0x53494749 // siginfo_t of the signal that caused the dump ("SIGI")
	NT_FILE    = 0x46494c45 // mapped files ("FILE")

	NT_X86_XSTATE       = 0x202 // x86 XSAVE extended state
	NT_X86_SHSTK        = 0x204 // x86 shadow stack (CET)
	NT_X86_XSAVE_LAYOUT = 0x205 // x86 XSAVE layout description, once per core (Linux >= 6.12)

	NT_ARM_TLS              = 0x401 // arm64 tpidr_el0 (and tpidr2_el0)
	NT_ARM_HW_BREAK         = 0x402 // arm64 hardware breakpoint registers
	NT_ARM_HW_WATCH         = 0x403 // arm64 hardware watchpoint registers
	NT_ARM_SYSTEM_CALL      = 0x404 // arm64 system call number
	NT_ARM_SVE              = 0x405 // arm64 Scalable Vector Extension registers
	NT_ARM_PAC_MASK         = 0x406 // arm64 pointer authentication code masks
	NT_ARM_PACA_KEYS        = 0x407 // arm64 pointer authentication address keys
	NT_ARM_PACG_KEYS        = 0x408 // arm64 pointer authentication generic key
	NT_ARM_TAGGED_ADDR_CTRL = 0x409 // arm64 tagged address control (prctl PR_SET_TAGGED_ADDR_CTRL)
	NT_ARM_PAC_ENABLED_KEYS = 0x40a // arm64 enabled pointer authentication keys
	NT_ARM_SSVE             = 0x40b // arm64 streaming SVE registers
	NT_ARM_ZA               = 0x40c // arm64 SME ZA registers
	NT_ARM_ZT               = 0x40d // arm64 SME ZT registers
)

// Note names: the n_name of a note, without the terminating NUL that the
// kernel counts in n_namesz.
const (
	NoteNameCore  = "CORE"
	NoteNameLinux = "LINUX"
)
