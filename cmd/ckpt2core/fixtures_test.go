package main

import "github.com/ckpt2core/ckpt2core/internal/imgtest"

// The fixtures the command tests share (imgtest finds testdata).
var (
	intrusionDir   = imgtest.IntrusionDir()
	intrusionAfter = imgtest.IntrusionArchive("after.tar.zst")
	podmanDir      = imgtest.Testdata("x86_64", "podman-counter")
)
