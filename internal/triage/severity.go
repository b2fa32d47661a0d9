package triage

import "fmt"

// UnmarshalText reads a severity's name (as MarshalText writes it), so
// that programs can read findings back.
func (s *Severity) UnmarshalText(b []byte) error {
	for _, v := range []Severity{Info, Medium, High} {
		if string(b) == v.String() {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", b)
}
