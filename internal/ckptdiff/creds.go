package ckptdiff

import (
	"fmt"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// credsOf returns the credentials of p's main thread (criuimg.ThreadCreds
// of core-<pid>.img), nil if unknown; the error says why.
func credsOf(p *criuimg.Process) (*criuimg.Creds, error) {
	if p == nil || len(p.Threads) == 0 || p.Threads[0].Tid != p.Pid {
		return nil, nil
	}
	c, err := criuimg.ThreadCreds(&p.Threads[0])
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// credFields are the credentials compared, as Field names.
var credFields = []struct {
	name string
	get  func(*criuimg.Creds) string
}{
	{"uid", func(c *criuimg.Creds) string { return fmt.Sprint(c.UID) }},
	{"gid", func(c *criuimg.Creds) string { return fmt.Sprint(c.GID) }},
	{"euid", func(c *criuimg.Creds) string { return fmt.Sprint(c.EUID) }},
	{"egid", func(c *criuimg.Creds) string { return fmt.Sprint(c.EGID) }},
	{"suid", func(c *criuimg.Creds) string { return fmt.Sprint(c.SUID) }},
	{"sgid", func(c *criuimg.Creds) string { return fmt.Sprint(c.SGID) }},
	{"fsuid", func(c *criuimg.Creds) string { return fmt.Sprint(c.FSUID) }},
	{"fsgid", func(c *criuimg.Creds) string { return fmt.Sprint(c.FSGID) }},
	{"cap_eff", func(c *criuimg.Creds) string { return fmt.Sprintf("%#x", c.Effective) }},
	{"cap_prm", func(c *criuimg.Creds) string { return fmt.Sprintf("%#x", c.Permitted) }},
	{"cap_inh", func(c *criuimg.Creds) string { return fmt.Sprintf("%#x", c.Inheritable) }},
	{"cap_bnd", func(c *criuimg.Creds) string { return fmt.Sprintf("%#x", c.Bounding) }},
	{"cap_amb", func(c *criuimg.Creds) string { return fmt.Sprintf("%#x", c.Ambient) }},
	{"secbits", func(c *criuimg.Creds) string { return fmt.Sprintf("%#x", c.Secbits) }},
	{"no_new_privs", func(c *criuimg.Creds) string { return fmt.Sprint(c.NoNewPrivs) }},
	{"lsm_profile", func(c *criuimg.Creds) string { return c.LSMProfile }},
	{"seccomp", func(c *criuimg.Creds) string { return fmt.Sprint(c.Seccomp) }},
}
