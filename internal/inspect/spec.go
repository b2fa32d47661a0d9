package inspect

import (
	"encoding/json"
	"fmt"
)

// SpecSecurity is what the container's OCI runtime spec (spec.dump) asks
// of its processes: the environment, the capability sets and whether a
// seccomp filter is set.
type SpecSecurity struct {
	Env []string
	// Capabilities holds the spec's sets by name ("effective",
	// "bounding", "permitted", "inheritable", "ambient"), each a list
	// of capability names ("CAP_CHOWN").
	Capabilities    map[string][]string
	Seccomp         bool
	NoNewPrivileges bool
}

// ParseSpecSecurity reads the security facts of spec.dump.
func ParseSpecSecurity(spec []byte) (*SpecSecurity, error) {
	var s struct {
		Process struct {
			Env             []string            `json:"env"`
			Capabilities    map[string][]string `json:"capabilities"`
			NoNewPrivileges bool                `json:"noNewPrivileges"`
		} `json:"process"`
		Linux struct {
			Seccomp json.RawMessage `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(spec, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", SpecDumpFile, err)
	}
	return &SpecSecurity{Env: s.Process.Env, Capabilities: s.Process.Capabilities, NoNewPrivileges: s.Process.NoNewPrivileges,
		Seccomp: len(s.Linux.Seccomp) > 0 && string(s.Linux.Seccomp) != "null"}, nil
}
