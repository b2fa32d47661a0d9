package synth

import "fmt"

// LargeChanged is Large(size) after a change: every every-th captured page
// (by address: vaddr/PageSize % every == 0) holds, at offset 64, the
// string "CHANGED_PAGE_<vaddr in hex>" over Large's bytes. A diff of
// Large(size) and LargeChanged(size, every) finds those pages changed, 23
// or so bytes each, and one new string in each.
func LargeChanged(size, every uint64) *Shape {
	s := large(size, func(vaddr uint64, page []byte) {
		FillPage(vaddr, page)
		if every > 0 && vaddr/PageSize%every == 0 {
			copy(page[64:], fmt.Sprintf("\x00CHANGED_PAGE_%x\x00", vaddr))
		}
	})
	s.Name = fmt.Sprintf("large-%d-changed-%d", size, every)
	return s
}
