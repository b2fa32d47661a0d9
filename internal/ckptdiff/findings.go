package ckptdiff

import (
	"slices"
	"strings"

	"github.com/ckpt2core/ckpt2core/internal/triage"
)

// findingKey identifies a finding across checkpoints: its rule, case and
// subject, and the process by executable, command line and comm (not by
// pid or address, which a restart changes).
func findingKey(f triage.Finding) string {
	return strings.Join([]string{f.Rule, f.Reason, f.Subject, f.Exe, f.Comm, strings.Join(f.Argv, "\x00")}, "\x01")
}

// newFindings runs triage on both checkpoints and returns B's findings
// that A does not have, with triage's warnings.
func newFindings(a, b *Checkpoint, pids []uint32) ([]triage.Finding, []string) {
	fa, _ := triage.Run(a.Images, a.Report, triage.Options{Pids: pidsIn(a, pids), Spec: a.Spec})
	fb, warns := triage.Run(b.Images, b.Report, triage.Options{Pids: pidsIn(b, pids), Spec: b.Spec})
	if len(pids) > 0 && len(pidsIn(b, pids)) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, f := range fa {
		seen[findingKey(f)] = true
	}
	var out []triage.Finding
	for _, f := range fb {
		if !seen[findingKey(f)] {
			out = append(out, f)
		}
	}
	for i := range warns {
		warns[i] = "B: triage: " + warns[i]
	}
	return out, warns
}

// pidsIn returns those of pids that c's report has (all of them if pids
// is empty: nil).
func pidsIn(c *Checkpoint, pids []uint32) []uint32 {
	if len(pids) == 0 {
		return nil
	}
	var out []uint32
	for _, p := range c.Report.Processes {
		if slices.Contains(pids, p.Pid) {
			out = append(out, p.Pid)
		}
	}
	if len(out) == 0 {
		return []uint32{0} // no process of c: examine none
	}
	return out
}
