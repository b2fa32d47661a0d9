package triage_test

import (
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

type netProc struct {
	pid, ppid uint32
	exe, comm string
	argv      []string
	files     []inspect.OpenFile
}

func sock(fd uint32, family, typ, state, local, remote string) inspect.OpenFile {
	return inspect.OpenFile{FD: fd, Type: "inet", Socket: &inspect.Socket{Family: family, Type: typ, Protocol: "tcp", State: state, Local: local, Remote: remote},
		Description: family + " " + local + " -> " + remote + " " + state}
}

// The network and process-tree rules read inspect's report of files and
// sockets: the processes come from the image writer, their descriptors
// are set in the report.
func TestNetworkAndTree(t *testing.T) {
	listen := sock(3, "inet6", "stream", "LISTEN", "[::]:80", "")
	accepted := sock(4, "inet6", "stream", "ESTABLISHED", "10.0.0.2:80", "10.0.0.9:51000")
	out := func(fd uint32) inspect.OpenFile {
		return sock(fd, "inet", "stream", "ESTABLISHED", "10.0.0.2:40000", "198.51.100.7:4444")
	}
	server := netProc{1, 0, "/usr/sbin/nginx", "nginx", []string{"nginx: master process nginx"}, []inspect.OpenFile{listen}}
	tests := []struct {
		name  string
		procs []netProc
		want  map[uint32][]want
	}{
		{"reverse shell under the server", []netProc{server,
			{2, 1, "/bin/bash", "bash", []string{"bash", "-i"}, []inspect.OpenFile{out(0), out(1), out(2)}}},
			map[uint32][]want{2: {{triage.RuleNetwork, "reverse-shell", triage.High}, {triage.RuleNetwork, "not-service", triage.Medium},
				{triage.RuleProcessTree, "interactive", triage.High}}}},
		{"pre-forked worker serving a client", []netProc{server,
			{2, 1, "/usr/sbin/nginx", "nginx", []string{"nginx: worker process"}, []inspect.OpenFile{listen, accepted}}}, nil},
		{"CGI script of the server", []netProc{server,
			{2, 1, "/usr/sbin/nginx", "nginx", []string{"nginx: worker process"}, []inspect.OpenFile{accepted}},
			{3, 2, "/bin/dash", "lookup", []string{"/bin/sh", "/www/cgi-bin/lookup"}, nil}},
			map[uint32][]want{3: {{triage.RuleProcessTree, "script", triage.Medium}}}},
		{"a shell that is not under a server", []netProc{
			{1, 0, "/bin/bash", "bash", []string{"bash", "-c", "while :; do sleep 1; done"}, nil},
			{2, 1, "/bin/bash", "bash", []string{"bash", "-i"}, nil}}, nil},
		{"client container: pid 1's connection is its service, a child's is not", []netProc{
			{1, 0, "/usr/bin/worker", "worker", []string{"/usr/bin/worker"}, []inspect.OpenFile{out(5)}},
			{2, 1, "/usr/bin/curl", "curl", []string{"curl", "http://198.51.100.7"}, []inspect.OpenFile{out(3)}}},
			map[uint32][]want{2: {{triage.RuleNetwork, "not-service", triage.Medium}}}},
		{"packet socket", []netProc{
			{1, 0, "/usr/bin/app", "app", []string{"/usr/bin/app"}, []inspect.OpenFile{{FD: 3, Type: "packet", Socket: &inspect.Socket{Family: "packet", Type: "raw"}}}}},
			map[uint32][]want{1: {{triage.RuleNetwork, "raw", triage.Medium}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := imgtest.New(imgtest.X86_64)
			for _, np := range tt.procs {
				p := c.AddProcess(np.pid, np.ppid)
				p.Comm = np.comm
				p.SetExe(np.exe)
				p.AddVMA(0x400000, 0x401000, criuimg.ProtRead|criuimg.ProtExec, 0, 0, np.exe)
				p.SetArgs(np.argv)
			}
			ck, err := criuimg.Open(imgtest.DirSource(t, c.WriteTemp(t)))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := inspect.Inspect(ck, inspect.Options{Env: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := range rep.Processes {
				for _, np := range tt.procs {
					if np.pid == rep.Processes[i].Pid {
						rep.Processes[i].Files = np.files
					}
				}
			}
			got, _ := triage.Run(ck, rep, triage.Options{})
			for pid, ws := range tt.want {
				for _, w := range ws {
					if len(find(got, pid, w.rule, w.sev, func(f triage.Finding) bool { return f.Reason == w.reason })) == 0 {
						t.Errorf("pid %d: no %s %s/%s finding", pid, w.sev, w.rule, w.reason)
					}
				}
			}
			for _, f := range got {
				if f.Severity > triage.Info && !containsWant(tt.want[f.Pid], f) {
					t.Errorf("pid %d: unexpected %s %s/%s (%s)", f.Pid, f.Severity, f.Rule, f.Reason, f.Subject)
				}
			}
		})
	}
}

// /etc/ld.so.preload written in the rw layer is a container finding
// (pid 0); another file there is not.
func TestLdSoPreload(t *testing.T) {
	for _, tt := range []struct {
		path string
		want int
	}{{"etc/ld.so.preload", 1}, {"/etc/ld.so.preload", 1}, {"etc/ld.so.conf", 0}} {
		c := imgtest.New(imgtest.X86_64)
		proc1(c, "/usr/bin/app", []string{"/usr/bin/app"}, nil, "app")
		ck, err := criuimg.Open(imgtest.DirSource(t, c.WriteTemp(t)))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := inspect.Inspect(ck, inspect.Options{Env: true})
		if err != nil {
			t.Fatal(err)
		}
		rep.RootfsDiff = []inspect.DiffFile{{Path: tt.path, Size: 20, Type: "file"}}
		got, _ := triage.Run(ck, rep, triage.Options{})
		if n := len(find(got, 0, triage.RulePreload, triage.High, nil)); n != tt.want {
			t.Errorf("%s: %d findings, want %d", tt.path, n, tt.want)
		}
	}
}
