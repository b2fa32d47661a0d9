// Command gencheckpoint writes a synthetic CRIU checkpoint for
// scripts/bench.sh: real CRIU framing and go-criu messages, with page bytes
// generated while writing (constant memory whatever the size).
//
//	gencheckpoint -shape large -size 4GiB -o DIR     4 GiB of pages in 4 mappings
//	gencheckpoint -shape vmas -vmas 60000 -o DIR     60,000 small mappings
//	gencheckpoint -shape vmas -vmas 70000 -sparse -o DIR
//	gencheckpoint -shape threads -threads 512 -o DIR
//	gencheckpoint -shape large -size 1GiB -change 1000 -o DIR   every 1000th page changed
//	gencheckpoint -shape large -size 1GiB -pages-from testdata -o DIR   real programs' pages
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ckpt2core/ckpt2core/internal/synth"
)

func main() {
	shape := flag.String("shape", "large", "large, vmas or threads")
	size := flag.String("size", "1GiB", "captured bytes for -shape large (suffixes KiB, MiB, GiB)")
	vmas := flag.Int("vmas", 60000, "mappings for -shape vmas")
	sparse := flag.Bool("sparse", false, "-shape vmas: captured pages in every 64th mapping only")
	threads := flag.Int("threads", 512, "threads for -shape threads")
	change := flag.Uint64("change", 0, "-shape large: mark every N-th page (synth.LargeChanged), for diff")
	from := flag.String("pages-from", "", "-shape large: take the pages' bytes from every pages-*.img under `DIR`, in turn (real programs' memory, which compresses as theirs does) instead of random bytes")
	out := flag.String("o", "", "image directory to write (created)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	n := *vmas
	if *shape == "threads" {
		n = *threads
	}
	bytes, err := parseSize(*size)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gencheckpoint: -size: %v\n", err)
		os.Exit(2)
	}
	s, err := synth.ByName(*shape, bytes, n, *sparse)
	if err == nil && *change > 0 && *shape == "large" {
		s = synth.LargeChanged(bytes, *change)
	}
	if err == nil && *from != "" && *shape == "large" {
		var sample []byte
		if sample, err = pagesUnder(*from); err == nil {
			s = synth.LargeFrom(bytes, sample)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gencheckpoint: %v\n", err)
		os.Exit(2)
	}
	if err := s.Write(*out); err != nil {
		fmt.Fprintf(os.Stderr, "gencheckpoint: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s: pid %d, %d threads, %d PT_LOADs expected, %d captured bytes, probe %#x\n",
		*out, synth.Pid, s.Threads, s.Loads, s.Captured, s.Probe)
}

// pagesUnder returns the bytes of every pages-*.img under dir, in the
// order of a walk, cut to whole pages.
func pagesUnder(dir string) ([]byte, error) {
	var all []byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasPrefix(d.Name(), "pages-") && strings.HasSuffix(d.Name(), ".img") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			all = append(all, b[:len(b)/synth.PageSize*synth.PageSize]...)
		}
		return nil
	})
	if err == nil && len(all) == 0 {
		err = fmt.Errorf("-pages-from %s: no pages-*.img under it", dir)
	}
	return all, err
}

func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		m      uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n * mult, err
}
