// Package e2e holds end-to-end tests of the ckpt2core command: they build
// ./cmd/ckpt2core, convert the CRIU checkpoints under testdata/ and compare
// every resulting core with the kernel's (or gcore's) oracle core through the
// independent reader internal/coredump, gdb and Delve. See testdata/README.md
// for what must equal the oracle and what may differ.
//
// Beyond the oracles: TestCrossHost converts every fixture with the CLI built
// for other hosts (aarch64 under qemu-aarch64-static, big-endian s390x,
// 32-bit 386) and requires byte-identical cores; TestPageSizes converts
// synthetic aarch64 checkpoints of 4, 16 and 64 KiB page kernels;
// TestARM64RootEveryOracleByte checks that with --root every byte the arm64
// oracles hold is in our core.
package e2e
