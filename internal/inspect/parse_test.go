package inspect

import (
	"slices"
	"strings"
	"testing"

	corex86 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

func TestParseNetworkStatus(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"none", `null`, nil},
		{"netavark", `{"podman":{"interfaces":{"eth0":{"subnets":[{"ipnet":"10.88.0.5/16","gateway":"10.88.0.1"}],"mac_address":"aa:bb:cc:dd:ee:ff"}}}}`, []string{"10.88.0.5/16"}},
		{"cni", `[{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.88.0.7/16","gateway":"10.88.0.1"},{"version":"6","address":"fd00::7/64"}]}]`, []string{"10.88.0.7/16", "fd00::7/64"}},
		{"not an address", `{"interfaces":{"eth0":{"subnets":[{"ipnet":"eth0"}]}}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNetworkStatus([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ParseNetworkStatus([]byte(`{`)); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestParseContainerCRIO(t *testing.T) {
	// The shape CRI-O writes (checkpointctl reads the same fields).
	config := `{"id":"abc123","name":"k8s_counter_counters_default_0","rootfsImageName":"quay.io/x/counter:1","createdTime":"2024-01-02T03:04:05Z","checkpointedTime":"2024-01-02T04:05:06Z"}`
	spec := `{"hostname":"counters","annotations":{"io.container.manager":"cri-o",
		"io.kubernetes.cri-o.Labels":"{\"io.kubernetes.container.name\":\"counter\",\"io.kubernetes.pod.name\":\"counters\",\"io.kubernetes.pod.namespace\":\"default\"}",
		"io.kubernetes.cri-o.IP.0":"10.85.0.9","io.kubernetes.cri-o.ImageName":"quay.io/x/counter:1"}}`
	c, err := ParseContainer([]byte(config), []byte(spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Container{Engine: "CRI-O", Name: "counter", ID: "abc123", Image: "quay.io/x/counter:1", Hostname: "counters",
		Created: "2024-01-02T03:04:05Z", Checkpointed: "2024-01-02T04:05:06Z", CheckpointedFrom: ConfigDumpFile,
		IPs: []string{"10.85.0.9"}, Pod: "counters", Namespace: "default"}
	c.Annotations = nil
	if c.Engine != want.Engine || c.Name != want.Name || c.ID != want.ID || c.Image != want.Image || c.Hostname != want.Hostname ||
		c.Created != want.Created || c.Checkpointed != want.Checkpointed || c.CheckpointedFrom != want.CheckpointedFrom ||
		!slices.Equal(c.IPs, want.IPs) || c.Pod != want.Pod || c.Namespace != want.Namespace {
		t.Errorf("got %+v\nwant %+v", *c, want)
	}
	if _, err := ParseContainer([]byte(`{"name":`), nil, nil); err == nil {
		t.Error("bad config.dump accepted")
	}
}

func TestParseStatsErrors(t *testing.T) {
	for _, in := range [][]byte{nil, {1, 2, 3}, {0x40, 0x59, 0x10, 0x55, 0, 0, 0, 0}} {
		if _, _, err := ParseStats("stats-dump", in); err == nil {
			t.Errorf("% x accepted", in)
		}
	}
}

// TestX86SyscallRule checks the register rule on each case, without code.
func TestX86SyscallRule(t *testing.T) {
	neg := func(v int64) uint64 { return uint64(v) }
	for _, tc := range []struct {
		name          string
		origAx, ax    uint64
		wantState     string
		wantName      string
		wantNoSyscall bool
	}{
		{"rewound futex", 202, 202, SyscallRestart, "futex", false},
		{"rewound read (nr 0)", 0, 0, SyscallRestart, "read", false},
		{"restart block", 230, neg(-4), SyscallInterrupted, "clock_nanosleep", false},
		{"completed write", 1, 5, SyscallReturned, "write", false},
		{"user code", neg(-1), 7, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &corex86.UserX86RegsEntry{OrigAx: proto.Uint64(tc.origAx), Ax: proto.Uint64(tc.ax), Ip: proto.Uint64(0x1000)}
			th := Thread{}
			x86Thread(&th, r, codeReader{p: &criuimg.Process{Mem: &criuimg.Memory{}}}) // no mapping: nothing captured
			if tc.wantNoSyscall {
				if th.Syscall != nil {
					t.Errorf("syscall %+v, want none", th.Syscall)
				}
				return
			}
			if th.Syscall == nil || th.Syscall.State != tc.wantState || th.Syscall.Name != tc.wantName {
				t.Fatalf("syscall %+v, want %s %s", th.Syscall, tc.wantName, tc.wantState)
			}
			if th.Code != CodeNotCaptured || !strings.Contains(th.Syscall.Evidence, "code not captured") {
				t.Errorf("code %q evidence %q", th.Code, th.Syscall.Evidence)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"/bin/ls", "-l"}, "/bin/ls -l"},
		{[]string{"sh", "-c", "echo 'hi' | cat"}, `sh -c 'echo '\''hi'\'' | cat'`},
		{[]string{""}, "''"},
		{[]string{"a\x1b[31mb"}, `$'a\x1b[31mb'`},
		{[]string{"\xff"}, `$'\xff'`},
	} {
		if got := ShellQuote(tc.in); got != tc.want {
			t.Errorf("ShellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := clean("a\nb\x1b"); got != `a\x0ab\x1b` {
		t.Errorf("clean: %q", got)
	}
}

func TestSyscallNames(t *testing.T) {
	common := []string{"read", "write", "futex", "clock_nanosleep", "nanosleep", "ppoll", "epoll_pwait", "pselect6",
		"wait4", "accept", "accept4", "recvfrom", "recvmsg", "sendto", "connect", "rt_sigsuspend", "rt_sigtimedwait",
		"openat", "close", "mmap", "restart_syscall"}
	x86Only := []string{"poll", "epoll_wait", "select", "pause"}
	names := func(m map[int]string) []string {
		var out []string
		for _, n := range m {
			out = append(out, n)
		}
		return out
	}
	x, a := names(x86_64SyscallNames), names(arm64SyscallNames)
	for _, n := range append(common, x86Only...) {
		if !slices.Contains(x, n) {
			t.Errorf("x86_64 table lacks %s", n)
		}
	}
	for _, n := range common {
		if !slices.Contains(a, n) {
			t.Errorf("arm64 table lacks %s", n)
		}
	}
	if len(x) < 300 || len(a) < 250 {
		t.Errorf("tables of %d and %d names", len(x), len(a))
	}
	if SyscallName(criuimg.ArchARM64, 98) != "futex" || SyscallName(criuimg.ArchX86_64, 202) != "futex" || SyscallName(criuimg.ArchX86_64, -1) != "" {
		t.Error("lookup")
	}
}
