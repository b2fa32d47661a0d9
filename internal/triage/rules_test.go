package triage_test

import (
	"fmt"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/creds"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	criusa "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-sa"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

const (
	rx  = criuimg.ProtRead | criuimg.ProtExec
	rwx = criuimg.ProtRead | criuimg.ProtWrite | criuimg.ProtExec
	r   = criuimg.ProtRead
)

// proc1 is a process whose first executable mapping is its program's
// text (compel's injection page), so that other code is judged alone.
func proc1(c *imgtest.Checkpoint, exe string, argv, env []string, comm string) *imgtest.Process {
	p := c.AddProcess(1, 0)
	p.Comm = comm
	p.SetExe(exe)
	p.AddVMA(0x400000, 0x402000, rx, 0, 0, exe)
	p.SetArgsEnv(argv, env)
	return p
}

func runRules(t *testing.T, c *imgtest.Checkpoint, spec *inspect.SpecSecurity) []triage.Finding {
	t.Helper()
	ck, err := criuimg.Open(imgtest.DirSource(t, c.WriteTemp(t)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.Inspect(ck, inspect.Options{Env: true})
	if err != nil {
		t.Fatal(err)
	}
	f, warnings := triage.Run(ck, rep, triage.Options{Spec: spec})
	for _, w := range warnings {
		t.Logf("warning: %s", w)
	}
	return f
}

func setCreds(p *imgtest.Process, eff uint64, seccomp criucore.SeccompMode) {
	w := []uint32{uint32(eff), uint32(eff >> 32)}
	tc := p.Threads[0].Core.ThreadCore
	tc.Creds = &creds.CredsEntry{Uid: proto.Uint32(0), Gid: proto.Uint32(0), Euid: proto.Uint32(0), Egid: proto.Uint32(0),
		Suid: proto.Uint32(0), Sgid: proto.Uint32(0), Fsuid: proto.Uint32(0), Fsgid: proto.Uint32(0), Secbits: proto.Uint32(0),
		CapEff: w, CapPrm: w, CapBnd: w, CapInh: []uint32{0, 0}}
	tc.SeccompMode = seccomp.Enum()
}

func handler(p *imgtest.Process, sig int, addr uint64) {
	for len(p.Task.Sigactions) < 62 {
		p.Task.Sigactions = append(p.Task.Sigactions, &criusa.SaEntry{Sigaction: proto.Uint64(0), Flags: proto.Uint64(0), Restorer: proto.Uint64(0), Mask: proto.Uint64(0)})
	}
	i := sig - 1
	if sig > 19 {
		i -= 2
	} else if sig > 9 {
		i--
	}
	p.Task.Sigactions[i].Sigaction = proto.Uint64(addr)
}

// CAP_CHOWN | CAP_KILL, CAP_SYS_ADMIN
const (
	specCaps = 1<<0 | 1<<5
	sysAdmin = 1 << 21
)

var spec = &inspect.SpecSecurity{Capabilities: map[string][]string{"effective": {"CAP_CHOWN", "CAP_KILL"}, "bounding": {"CAP_CHOWN", "CAP_KILL"}, "permitted": {"CAP_CHOWN", "CAP_KILL"}}, Seccomp: true}

type want struct {
	rule, reason string
	sev          triage.Severity
}

func TestRules(t *testing.T) {
	page := make([]byte, 4096)
	copy(page, "\x48\xc7\xc0\x07\x00\x00\x00\xc3")
	tests := []struct {
		name  string
		build func(c *imgtest.Checkpoint)
		spec  *inspect.SpecSecurity
		want  []want // findings above info, and the info ones listed
		none  []string
	}{
		{"rwx anonymous page", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			p.AddVMA(0x7f0000000000, 0x7f0000001000, rwx, 0, 0, "")
			p.AddPages(0x7f0000000000, page, criuimg.PEPresent)
		}, nil, []want{{triage.RuleWXMemory, "anon", triage.High}}, nil},
		{"rwx JIT cache of a JVM is info", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/lib/jvm/bin/java", []string{"java", "-jar", "x.jar"}, nil, "java")
			p.AddVMA(0x7e0000000000, 0x7e0000010000, rx, 0, 0, "/usr/lib/jvm/lib/server/libjvm.so")
			p.AddVMA(0x7f0000000000, 0x7f0000100000, rwx, 0, 0, "")
			p.AddPages(0x7f0000000000, page, criuimg.PEPresent)
		}, nil, []want{{triage.RuleWXMemory, "anon", triage.Info}}, nil},
		{"libjvm.so embedded in another program is recognised", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/opt/app/launcher", []string{"/opt/app/launcher"}, nil, "launcher")
			p.AddVMA(0x7e0000000000, 0x7e0000010000, rx, 0, 0, "/opt/app/jre/lib/server/libjvm.so")
			p.AddVMA(0x7f0000000000, 0x7f0000001000, rx, 0, 0, "")
		}, nil, []want{{triage.RuleAnonExec, "anon", triage.Info}}, nil},
		{"anonymous r-x (written, then mprotect)", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			p.AddVMA(0x7f0000000000, 0x7f0000001000, rx, 0, 0, "")
			p.AddPages(0x7f0000000000, page, criuimg.PEPresent)
		}, nil, []want{{triage.RuleAnonExec, "anon", triage.High}}, nil},
		{"node's code space is info", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/node", []string{"node", "server.js"}, nil, "node")
			p.AddVMA(0x7f0000000000, 0x7f0000040000, rx, 0, 0, "")
		}, nil, []want{{triage.RuleAnonExec, "anon", triage.Info}}, nil},
		{"no executable anonymous memory: nothing", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			p.AddVMA(0x7f0000000000, 0x7f0000001000, criuimg.ProtRead|criuimg.ProtWrite, 0, 0, "")
			p.AddPages(0x7f0000000000, page, criuimg.PEPresent)
		}, nil, nil, []string{triage.RuleAnonExec, triage.RuleWXMemory}},
		{"captured library code page", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			p.AddVMA(0x7f0000000000, 0x7f0000004000, rx, 0, 0, "/lib/libc.so.6")
			p.AddPages(0x7f0000002000, page, criuimg.PEPresent)
		}, nil, []want{{triage.RuleModifiedCode, "captured", triage.High}}, nil},
		{"compel's injection page alone is info", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			p.AddPages(0x400000, page, criuimg.PEPresent)
		}, nil, []want{{triage.RuleModifiedCode, "criu-injection", triage.Info}}, nil},
		{"the page after compel's is patched code", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			p.AddPages(0x400000, append(page, page...), criuimg.PEPresent)
		}, nil, []want{{triage.RuleModifiedCode, "criu-injection", triage.Info}, {triage.RuleModifiedCode, "captured", triage.High}}, nil},
		{"captured data page of a library is not code", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			p.AddVMA(0x7f0000000000, 0x7f0000001000, criuimg.ProtRead|criuimg.ProtWrite, 0, 0, "/lib/libc.so.6")
			p.AddPages(0x7f0000000000, page, criuimg.PEPresent)
		}, nil, nil, []string{triage.RuleModifiedCode}},
		{"kernel-thread name", func(c *imgtest.Checkpoint) {
			proc1(c, "/tmp/x", []string{"[kworker/0:1]"}, nil, "kworker/0:1")
		}, nil, []want{{triage.RuleNameSpoof, "kernel-thread", triage.High}}, nil},
		{"comm unexplained", func(c *imgtest.Checkpoint) {
			proc1(c, "/usr/bin/app", []string{"sshd: root@pts/0"}, nil, "app") // exec -a
		}, nil, []want{{triage.RuleNameSpoof, "mismatch", triage.Medium}}, nil},
		{"comm of another program", func(c *imgtest.Checkpoint) {
			proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "systemd-journal")
		}, nil, nil, []string{}},
		{"busybox applet", func(c *imgtest.Checkpoint) {
			proc1(c, "/bin/busybox", []string{"nc", "-l", "-p", "4444"}, nil, "nc")
		}, nil, nil, []string{triage.RuleNameSpoof}},
		{"interpreter running a script", func(c *imgtest.Checkpoint) {
			proc1(c, "/usr/bin/python3.11", []string{"/usr/bin/python3", "/opt/svc/worker.py"}, nil, "worker.py")
		}, nil, nil, []string{triage.RuleNameSpoof}},
		{"setproctitle", func(c *imgtest.Checkpoint) {
			proc1(c, "/usr/lib/postgresql/15/bin/postgres", []string{"postgres: checkpointer"}, nil, "postgres")
		}, nil, nil, []string{triage.RuleNameSpoof}},
		{"thread renamed, argv[0] names the program", func(c *imgtest.Checkpoint) {
			proc1(c, "/usr/bin/app", []string{"/usr/bin/app", "-d"}, nil, "app-io-worker")
		}, nil, nil, []string{triage.RuleNameSpoof}},
		{"LD_PRELOAD and LD_LIBRARY_PATH", func(c *imgtest.Checkpoint) {
			proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, []string{"LD_PRELOAD=/tmp/x.so", "LD_LIBRARY_PATH=/opt/lib"}, "app")
		}, nil, []want{{triage.RulePreload, "environment", triage.High}, {triage.RulePreload, "environment", triage.Medium}}, nil},
		{"LD_PRELOAD set by the spec is info", func(c *imgtest.Checkpoint) {
			proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, []string{"LD_PRELOAD=/usr/lib/libjemalloc.so.2"}, "app")
		}, &inspect.SpecSecurity{Env: []string{"LD_PRELOAD=/usr/lib/libjemalloc.so.2"}}, []want{{triage.RulePreload, "environment-from-spec", triage.Info}}, nil},
		{"capabilities beyond the spec, seccomp off", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			setCreds(p, specCaps|sysAdmin, criucore.SeccompMode_disabled)
		}, spec, []want{{triage.RuleCredentials, "capabilities", triage.High}, {triage.RuleCredentials, "seccomp-off", triage.High}}, nil},
		{"capabilities and seccomp as the spec sets them", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			setCreds(p, specCaps, criucore.SeccompMode_filter)
		}, spec, nil, []string{triage.RuleCredentials}},
		{"signal handler in anonymous code", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			p.AddVMA(0x7f0000000000, 0x7f0000001000, rx, 0, 0, "")
			handler(p, 11, 0x7f0000000010)
			handler(p, 2, 0x400100) // in the program: fine
			handler(p, 13, 1)       // SIG_IGN
		}, nil, []want{{triage.RuleAnonExec, "anon", triage.High}, {triage.RuleSignalHandler, "anon", triage.High}}, nil},
		{"signal handler outside every mapping", func(c *imgtest.Checkpoint) {
			p := proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
			handler(p, 64, 0x1234000)
		}, nil, []want{{triage.RuleSignalHandler, "unmapped", triage.High}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := imgtest.New(imgtest.X86_64)
			tt.build(c)
			got := runRules(t, c, tt.spec)
			var gotKeys []string
			for _, f := range got {
				gotKeys = append(gotKeys, fmt.Sprintf("%s/%s/%s", f.Rule, f.Reason, f.Severity))
			}
			for _, w := range tt.want {
				if len(find(got, 1, w.rule, w.sev, func(f triage.Finding) bool { return f.Reason == w.reason })) == 0 {
					t.Errorf("no %s %s/%s finding; got %v", w.sev, w.rule, w.reason, gotKeys)
				}
			}
			for _, f := range got {
				if f.Severity > triage.Info && !containsWant(tt.want, f) {
					t.Errorf("unexpected %s %s/%s finding (%s)", f.Severity, f.Rule, f.Reason, f.Subject)
				}
				for _, r := range tt.none {
					if f.Rule == r {
						t.Errorf("unexpected %s %s/%s finding", f.Severity, f.Rule, f.Reason)
					}
				}
			}
		})
	}
}

func containsWant(ws []want, f triage.Finding) bool {
	for _, w := range ws {
		if w.rule == f.Rule && w.reason == f.Reason && w.sev == f.Severity {
			return true
		}
	}
	return false
}
