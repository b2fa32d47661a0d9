package inspect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// schemaKeys are the keys of each object of the --json schema (README,
// report.go). Every one is always present.
var schemaKeys = map[string][]string{
	"report":        {"checkpoint", "arch", "images_version", "container", "dump_stats", "restore_stats", "processes", "mounts", "rootfs_diff", "volumes", "uts", "sizes", "warnings"},
	"container":     {"engine", "name", "id", "image", "image_id", "runtime", "hostname", "created", "checkpointed", "checkpointed_from", "ips", "pod", "namespace", "command", "annotations", "image_ref", "log_path", "networks", "bind_mounts", "logs"},
	"dump_stats":    {"freezing_time_us", "frozen_time_us", "memdump_time_us", "memwrite_time_us", "irmap_resolve_us", "pages_scanned", "pages_skipped_parent", "pages_written", "pages_lazy", "page_pipes", "page_pipe_bufs", "shpages_scanned", "shpages_skipped_parent", "shpages_written"},
	"restore_stats": {"pages_compared", "pages_skipped_cow", "pages_restored", "forking_time_us", "restore_time_us"},
	"process":       {"pid", "ppid", "pgid", "sid", "comm", "state", "exit_code", "exit_signal", "thread_count", "argv", "argv_truncated", "env", "exe", "cwd", "root", "threads", "memory", "files", "warnings"},
	"thread":        {"tid", "name", "pc", "sp", "code", "instruction", "syscall"},
	"syscall":       {"nr", "name", "state", "return", "evidence", "note"},
	"memory":        {"vmas", "mapped_bytes", "captured_bytes", "shared_bytes", "unreadable_bytes", "kinds"},
	"kind":          {"kind", "vmas", "bytes", "captured_bytes"},
	"file":          {"fd", "type", "id", "path", "pipe_id", "socket", "description"},
	"socket":        {"family", "type", "state", "protocol", "local", "remote", "peer", "inode"},
	"mount":         {"mount_id", "parent_id", "mountpoint", "source", "fstype", "root", "options"},
	"diff":          {"path", "size", "type"},
	"volume":        {"name", "size", "entries", "files", "truncated"},
}

// nullable are the keys whose value may be null (the schema's "or null");
// every other key holds a value of its type: [] for an empty array, ""
// for an unknown string.
var nullable = []string{"sizes", "container", "dump_stats", "restore_stats", "exit_code", "exit_signal", "env", "memory", "syscall", "return", "socket"}

// checkStableKeys checks that the JSON of rep has, in every object,
// exactly the keys of the schema, with null only where the schema allows
// it.
func checkStableKeys(t *testing.T, rep *Report) {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var check func(kind string, v any)
	object := func(kind string, o map[string]any) {
		var got []string
		for k, x := range o {
			got = append(got, k)
			if x == nil && !slices.Contains(nullable, k) {
				t.Errorf("%s: %q is null", kind, k)
			}
		}
		want := slices.Clone(schemaKeys[kind])
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s keys %q, schema has %q", kind, got, want)
		}
	}
	list := func(kind string, x any) {
		for _, e := range x.([]any) {
			check(kind, e)
		}
	}
	check = func(kind string, x any) {
		o, ok := x.(map[string]any)
		if !ok {
			t.Errorf("%s is %T, want an object", kind, x)
			return
		}
		object(kind, o)
		switch kind {
		case "report":
			for _, k := range []string{"container", "dump_stats", "restore_stats"} {
				if o[k] != nil {
					check(k, o[k])
				}
			}
			list("process", o["processes"])
			list("mount", o["mounts"])
			list("diff", o["rootfs_diff"])
			list("volume", o["volumes"])
		case "volume":
			list("diff", o["files"])
		case "process":
			list("thread", o["threads"])
			list("file", o["files"])
			if o["memory"] != nil {
				check("memory", o["memory"])
			}
		case "thread":
			if o["syscall"] != nil {
				check("syscall", o["syscall"])
			}
		case "memory":
			list("kind", o["kinds"])
		case "file":
			if o["socket"] != nil {
				check("socket", o["socket"])
			}
		}
	}
	check("report", v)
}

// schemaBlock returns the lines of the JSON schema in the README (between
// the heading and the end of the code block) or in report.go's package
// documentation (after "//\t"), trimmed.
func schemaBlock(t *testing.T, path string, start, end string, prefix string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("%s: no %q", path, start)
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		t.Fatalf("%s: no %q after %q", path, end, start)
	}
	var out []string
	for _, l := range strings.Split(s[:j], "\n") {
		l = strings.TrimPrefix(l, prefix)
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimRight(l, " "))
		}
	}
	return out
}

// TestSchemaDocumented: the README's schema is report.go's, and it names
// every key the output has.
func TestSchemaDocumented(t *testing.T) {
	readme := schemaBlock(t, filepath.Join("..", "..", "README.md"), "no other key is ever null).\n\n```\n", "```", "")
	doc := schemaBlock(t, "report.go", "(marked \"or null\"). What could not be read is named in \"warnings\".\n//\n", "\n//\n", "//\t")
	if !slices.Equal(readme, doc) {
		t.Errorf("README schema and report.go's differ:\n%s\n---\n%s", strings.Join(readme, "\n"), strings.Join(doc, "\n"))
	}
	text := strings.Join(readme, "\n")
	for kind, keys := range schemaKeys {
		for _, k := range keys {
			if !regexp.MustCompile(`"` + k + `"\s*[:,]`).MatchString(text) {
				t.Errorf("%s key %q is not in the README's schema", kind, k)
			}
		}
	}
	for _, l := range readme {
		for _, k := range nullable {
			if strings.Contains(l, `"`+k+`":`) && !strings.Contains(l, "or null") {
				t.Errorf("the schema does not say that %q may be null: %s", k, l)
			}
		}
	}
}

// TestStableKeys: a zombie (static-c pid 1538) and a process in a
// container have every key of the schema: the zombie's arrays are [],
// its strings "", its memory null; a process's syscall, socket and exit
// status are null where they do not apply, and a thread whose code was
// not captured has instruction "".
func TestStableKeys(t *testing.T) {
	_, _, rep := inspectX86(t, "static-c", Options{})
	checkStableKeys(t, rep)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Processes []map[string]json.RawMessage `json:"processes"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var zombie map[string]json.RawMessage
	for _, p := range v.Processes {
		if string(p["pid"]) == "1538" {
			zombie = p
		}
	}
	if zombie == nil {
		t.Fatal("no pid 1538 in static-c")
	}
	want := map[string]string{
		"state": `"zombie"`, "exit_code": "7", "exit_signal": "null", "argv": "[]", "argv_truncated": "false", "env": "null",
		"exe": `""`, "cwd": `""`, "root": `""`, "threads": "[]", "memory": "null", "files": "[]", "warnings": "[]",
	}
	for k, w := range want {
		if got := string(zombie[k]); got != w {
			t.Errorf("zombie %s = %s, want %s", k, got, w)
		}
	}
	// With --env, the zombie's environment is [] (asked for, none).
	rep = inspectDir(t, filepath.Join(testdata, "x86_64/static-c/images"), Options{Env: true})
	for _, p := range rep.Processes {
		if p.State == "zombie" {
			if b, _ := json.Marshal(p); !strings.Contains(string(b), `"env":[]`) {
				t.Errorf("zombie with Options.Env: %s", b)
			}
		}
	}
	// threads-c's main thread waits in libc, whose code was not captured.
	_, _, rep = inspectX86(t, "threads-c", Options{})
	b, err = json.Marshal(rep.Processes[0].Threads[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"code":"not captured","instruction":""`) {
		t.Errorf("thread without code: %s", b)
	}
}

// TestPodSchemaDocumented: the README's pod checkpoint schema is
// pod.go's, names every key PodReport writes, and those are always
// present.
func TestPodSchemaDocumented(t *testing.T) {
	readme := schemaBlock(t, filepath.Join("..", "..", "README.md"), "single container's checkpoint image.\n\n```\n", "```", "")
	doc := schemaBlock(t, "pod.go", "every key is always present.\n//\n", "\ntype PodReport", "//\t")
	if !slices.Equal(readme, doc) {
		t.Errorf("README pod schema and pod.go's differ:\n%s\n---\n%s", strings.Join(readme, "\n"), strings.Join(doc, "\n"))
	}
	b, err := json.Marshal(PodReport{Containers: []PodContainer{{}}})
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(readme, "\n")
	var check func(v any)
	check = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if !regexp.MustCompile(`"` + k + `"\s*[:,]`).MatchString(text) {
					t.Errorf("key %q is not in the README's pod schema", k)
				}
				if k != "annotations" {
					check(e)
				}
			}
		case []any:
			for _, e := range x {
				check(e)
			}
		}
	}
	var v any
	json.Unmarshal(b, &v)
	check(v)
}
