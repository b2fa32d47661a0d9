// Package e2e holds end-to-end tests of the ckpt2core command: they build
// ./cmd/ckpt2core, convert the CRIU checkpoints under testdata/ and compare
// every resulting core with the kernel's (or gcore's) oracle core through the
// independent reader internal/coredump. See testdata/README.md for what must
// equal the oracle and what may differ.
package e2e
