package inspect

import "github.com/ckpt2core/ckpt2core/criuimg"

// Open opens the images of src as criuimg.Open does, except that a
// damaged files.img (which criuimg.Open refuses) does not stop it
// (criuimg.SalvageOpen): the files of its entries before the damaged one
// are known, and Inspect says what lacks a path because of it (mappings,
// open files, the cwd). Only a damaged inventory.img or pstree.img is an
// error.
//
// Deprecated: use criuimg.SalvageOpen, which it only calls (kept while
// other commands still call it).
func Open(src criuimg.Source) (*criuimg.Checkpoint, error) { return criuimg.SalvageOpen(src) }
