package main

import (
	"github.com/ckpt2core/ckpt2core/criuimg"
)

// openCheckpoint opens the checkpoint at path (a CRIU image directory) and
// returns its images and a function that releases what opening it took.
// Every command that reads a checkpoint goes through it.
func openCheckpoint(path string) (criuimg.Source, func(), error) {
	src, err := criuimg.NewDirSource(path)
	if err != nil {
		return nil, nil, err
	}
	return src, func() {}, nil
}
