package ckptdiff

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/creds"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// credsOf returns the credentials of p's main thread (thread_core.creds of
// core-<pid>.img), nil if unknown.
func credsOf(p *criuimg.Process) *creds.CredsEntry {
	if p == nil || p.Task == nil {
		return nil
	}
	return p.Task.GetThreadCore().GetCreds()
}

// credFields are the credentials compared, as Field names.
var credFields = []struct {
	name string
	get  func(*creds.CredsEntry) string
}{
	{"uid", func(c *creds.CredsEntry) string { return fmt.Sprint(c.GetUid()) }},
	{"gid", func(c *creds.CredsEntry) string { return fmt.Sprint(c.GetGid()) }},
	{"euid", func(c *creds.CredsEntry) string { return fmt.Sprint(c.GetEuid()) }},
	{"egid", func(c *creds.CredsEntry) string { return fmt.Sprint(c.GetEgid()) }},
	{"suid", func(c *creds.CredsEntry) string { return fmt.Sprint(c.GetSuid()) }},
	{"sgid", func(c *creds.CredsEntry) string { return fmt.Sprint(c.GetSgid()) }},
	{"fsuid", func(c *creds.CredsEntry) string { return fmt.Sprint(c.GetFsuid()) }},
	{"fsgid", func(c *creds.CredsEntry) string { return fmt.Sprint(c.GetFsgid()) }},
	{"groups", func(c *creds.CredsEntry) string { return words(c.GetGroups(), "%d") }},
	{"cap_eff", func(c *creds.CredsEntry) string { return words(c.GetCapEff(), "%#x") }},
	{"cap_prm", func(c *creds.CredsEntry) string { return words(c.GetCapPrm(), "%#x") }},
	{"cap_bnd", func(c *creds.CredsEntry) string { return words(c.GetCapBnd(), "%#x") }},
	{"no_new_privs", func(c *creds.CredsEntry) string { return fmt.Sprint(c.GetNoNewPrivs()) }},
	{"lsm_profile", func(c *creds.CredsEntry) string { return c.GetLsmProfile() }},
}

func words(v []uint32, format string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, " ")
}
