package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/rootfs"
)

// imageFlag adds --image to fs.
func imageFlag(fs *pflag.FlagSet) *string {
	return fs.String("image", "", imageHelp)
}

// imageHelp is --image's help.
const imageHelp = "the container's image as the root filesystem (a docker-archive or oci-archive tar, or an OCI layout directory): only the files the checkpoint maps are unpacked, into a temporary directory removed on exit"

// imageRootPrefix begins the name of the directory of TMPDIR an --image
// root is unpacked into (the one thing a command names in TMPDIR: what a
// SIGKILL can leave there, see the README).
const imageRootPrefix = "ckpt2core-image-"

// imageRoot unpacks, from the image at image, the files the processes of
// ck map (and the image's symbolic links) into a new directory of TMPDIR
// (stop.tempDir: removed on every exit but SIGKILL), and returns it with
// a function removing it. It warns on stderr when config.dump names
// another image.
func imageRoot(stop *stopper, image string, src criuimg.Source, ck *criuimg.Checkpoint, stderr io.Writer) (string, func(), error) {
	img, err := rootfs.OpenImage(image)
	if err != nil {
		return "", nil, fmt.Errorf("--image: %w", err)
	}
	defer img.Close()
	if cs, ok := src.(*checkpointSource); ok {
		if b, err := fs.ReadFile(cs.ck.Meta(), inspect.ConfigDumpFile); err == nil {
			if c, err := inspect.ParseContainer(b, nil, nil); err == nil && !img.Matches(c.Image, c.ImageID, c.ImageRef) {
				fmt.Fprintf(stderr, "ckpt2core: warning: --image %s is %s (%v), but config.dump names image %q (id %q, ref %q)\n",
					safe(image), safe(img.ID), safe(fmt.Sprint(img.Names)), safe(c.Image), safe(c.ImageID), safe(c.ImageRef))
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "ckpt2core: %s: the image it names is not compared with --image\n", safe(err.Error()))
		}
	}
	dir, cleanup, err := stop.tempDir(imageRootPrefix)
	if err != nil {
		return "", nil, fmt.Errorf("--image: %w", err)
	}
	if _, err := img.Materialize(dir, rootfs.MappedPaths(ck)); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("--image %s: %w", image, err)
	}
	return dir, cleanup, nil
}
