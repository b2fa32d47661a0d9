package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/synth"
)

// chromium returns the path of Debian's chromium. Missing, the test is
// skipped, except on CI (CI=true), where .ci/run installs it: there a
// missing browser fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (.ci/run installs it)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// pageFacts is what the browser saw of a report.
type pageFacts struct {
	Ready        string `json:"ready"`
	Title        string `json:"title"`
	Scripts      int    `json:"scripts"`
	Links        []string
	Artifacts    []string
	FindingLinks []string
	Sections     []struct {
		ID       string   `json:"id"`
		Maps     int      `json:"maps"`
		Rects    int      `json:"rects"`
		Width    float64  `json:"width"`
		Height   float64  `json:"height"`
		Summary  string   `json:"summary"`
		Marks    []string `json:"marks"`
		Findings []string `json:"findings"`
	} `json:"sections"`
	// Requests, Errors and Dialogs are from the DevTools protocol.
	Requests []string
	Errors   []string
	Dialogs  []string
	Elapsed  time.Duration
}

const factsJS = `(() => {
  const secs = [...document.querySelectorAll('details.proc')];
  return {
    ready: document.documentElement.getAttribute('data-ready') || '',
    title: document.title,
    scripts: document.scripts.length,
    Artifacts: [...document.querySelectorAll('#findings tr')].map(tr => tr.textContent),
    FindingLinks: [...document.querySelectorAll('table.findings a')].map(a => a.getAttribute('href')),
    Links: [...document.querySelectorAll('#tree a, #processes ul.tree a')].map(a => a.getAttribute('href')),
    sections: secs.map(d => {
      const svg = d.querySelector('svg.map');
      const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
      return {id: d.id, maps: d.querySelectorAll('svg.map').length, rects: d.querySelectorAll('svg.map rect').length,
        width: r.width, height: r.height, summary: d.querySelector('summary').textContent,
        marks: [...d.querySelectorAll('svg.map path.hit > title')].map(t => t.textContent),
        findings: [...d.querySelectorAll('svg.map path.finding > title')].map(t => t.textContent)};
    }),
  };
})()`

// openReport loads file in headless Chromium, with every network request,
// console error, exception, CSP violation and dialog recorded, and saves a
// screenshot of the whole page as shot.
func openReport(t *testing.T, browser, file, shot string) *pageFacts {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	pageURL := (&url.URL{Scheme: "file", Path: abs}).String()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts, chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
		// Anything that would go out meets a closed port.
		chromedp.ProxyServer("http://127.0.0.1:9"), chromedp.Flag("proxy-bypass-list", "<-loopback>"))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	facts := &pageFacts{}
	var mu sync.Mutex
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if e.Request.URL != pageURL {
				facts.Requests = append(facts.Requests, e.Request.URL)
			}
		case *runtime.EventExceptionThrown:
			facts.Errors = append(facts.Errors, "exception: "+e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				facts.Errors = append(facts.Errors, "console: "+string(e.Type))
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				facts.Errors = append(facts.Errors, "log: "+e.Entry.Text)
			}
		case *page.EventJavascriptDialogOpening:
			facts.Dialogs = append(facts.Dialogs, e.Message)
			// A dialog blocks the page: dismiss it (not from the listener).
			go chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
		}
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := chromedp.Do(bctx,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := chromedp.Call(ctx, log.Enable, struct{}{})
			return err
		}),
		chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	res, err := chromedp.Run(bctx, chromedp.Evaluate[pageFacts](factsJS))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	facts.Elapsed = time.Since(start)
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", file, err)
	}
	if err := os.WriteFile(shot, png, 0o600); err != nil {
		t.Fatal(err)
	}
	chromedp.Do(bctx, chromedp.Sleep(200*time.Millisecond)) // late events
	mu.Lock()
	defer mu.Unlock()
	res.Requests, res.Errors, res.Dialogs, res.Elapsed = facts.Requests, facts.Errors, facts.Dialogs, facts.Elapsed
	return &res
}

// checkPage checks what every report must show in a browser: loaded with
// its script run, no request, no error, one section with an SVG map per
// live process of want, each linked from the tree.
func checkPage(t *testing.T, f *pageFacts, want []uint32) {
	t.Helper()
	if f.Ready != "1" {
		t.Errorf("the report's script did not run (data-ready %q)", f.Ready)
	}
	if len(f.Requests) > 0 {
		t.Errorf("network requests: %q", f.Requests)
	}
	if len(f.Errors) > 0 {
		t.Errorf("errors: %q", f.Errors)
	}
	if len(f.Dialogs) > 0 {
		t.Errorf("dialogs (a script of the checkpoint ran): %q", f.Dialogs)
	}
	if f.Scripts != 1 {
		t.Errorf("%d scripts in the DOM, want the report's one", f.Scripts)
	}
	var ids []string
	for _, s := range f.Sections {
		ids = append(ids, s.ID)
		if s.Maps != 1 || s.Rects == 0 || s.Width < 500 || s.Height < 20 {
			t.Errorf("section %s: %d maps, %d rects, drawn %vx%v", s.ID, s.Maps, s.Rects, s.Width, s.Height)
		}
	}
	var wantIDs []string
	for _, pid := range want {
		wantIDs = append(wantIDs, fmt.Sprintf("p%d", pid))
		if !slices.Contains(f.Links, fmt.Sprintf("#p%d", pid)) {
			t.Errorf("the tree does not link pid %d", pid)
		}
	}
	slices.Sort(ids)
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("sections %v, want %v", ids, wantIDs)
	}
}

// TestReportInBrowser opens the reports of the intrusion fixture (after
// the attack, with every marker of its manifest marked) and of the clean
// checkpoint before it in headless Chromium.
func TestReportInBrowser(t *testing.T) {
	browser := chromium(t)
	man := imgtest.Intrusion(t)
	dir := t.TempDir()

	t.Run("after", func(t *testing.T) {
		out := filepath.Join(dir, "after.html")
		args := []string{"report", intrusionAfter, "-o", out}
		var names []string
		for name := range man.Markers {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			args = append(args, "--mark", man.Markers[name])
		}
		runReportCLI(t, args...)
		f := openReport(t, browser, out, filepath.Join(dir, "after.png"))
		var pids []uint32
		for _, p := range man.ProcessesAfter {
			pids = append(pids, p.Pid)
		}
		checkPage(t, f, pids)
		// Every hit the manifest lists in a process's private pages is
		// marked on that process's map at its address.
		n := 0
		for _, name := range names {
			for _, h := range man.MarkerHitsAfter[name] {
				if h.Where != "private-pages" {
					continue
				}
				n++
				want := man.Markers[name] + " at " + h.Vaddr + "\n"
				found := false
				for _, s := range f.Sections {
					if s.ID == fmt.Sprintf("p%d", h.Pid) {
						found = slices.ContainsFunc(s.Marks, func(m string) bool { return strings.HasPrefix(m, want) })
					}
				}
				if !found {
					t.Errorf("%s at %s (pid %d) not marked", name, h.Vaddr, h.Pid)
				}
			}
		}
		if n < 10 {
			t.Errorf("only %d hits in the manifest", n)
		}
		// triage's findings: one for every process the manifest's
		// indicators name, and those about a mapping placed on the
		// process's map at the mapping's start.
		for _, ind := range man.Indicators {
			if ind.PidOr(0) == 0 {
				continue
			}
			if !slices.Contains(f.FindingLinks, fmt.Sprintf("#p%d", *ind.Pid)) {
				t.Errorf("indicator %s: no finding about pid %d", ind.Category, *ind.Pid)
			}
			if ind.Mapping == nil {
				continue
			}
			found := false
			for _, s := range f.Sections {
				if s.ID == fmt.Sprintf("p%d", *ind.Pid) {
					found = slices.ContainsFunc(s.Findings, func(m string) bool { return strings.HasSuffix(m, "\n"+ind.Mapping.Start) })
				}
			}
			if !found {
				t.Errorf("indicator %s: no finding marked at %s on pid %d's map", ind.Category, ind.Mapping.Start, *ind.Pid)
			}
		}
		// Every file the attacker delivered is listed with its hash.
		for name, d := range man.Delivered {
			if !slices.ContainsFunc(f.Artifacts, func(row string) bool { return strings.Contains(row, d.SHA256) }) {
				t.Errorf("delivered %s (%s, sha256 %s) not among the artifacts", name, d.Path, d.SHA256)
			}
		}
		if len(man.Delivered) < 4 {
			t.Errorf("%d delivered files in the manifest", len(man.Delivered))
		}
		t.Logf("after: %d sections, loaded in %v, screenshot %s", len(f.Sections), f.Elapsed, filepath.Join(dir, "after.png"))
	})

	t.Run("before", func(t *testing.T) {
		out := filepath.Join(dir, "before.html")
		runReportCLI(t, "report", filepath.Join(intrusionDir, "before.tar"), "-o", out)
		f := openReport(t, browser, out, filepath.Join(dir, "before.png"))
		var pids []uint32
		for _, p := range man.BeforeVsAfter.Processes.Before {
			pids = append(pids, p.Pid)
		}
		checkPage(t, f, pids)
	})

	t.Run("diff", func(t *testing.T) {
		out := filepath.Join(dir, "diff.html")
		runReportCLI(t, "report", filepath.Join(intrusionDir, "before.tar"), intrusionAfter, "-o", out)
		f := openReport(t, browser, out, filepath.Join(dir, "diff.png"))
		if f.Ready != "1" || len(f.Requests) > 0 || len(f.Errors) > 0 || len(f.Dialogs) > 0 || f.Scripts != 1 {
			t.Errorf("ready %q, requests %q, errors %q, dialogs %q, %d scripts", f.Ready, f.Requests, f.Errors, f.Dialogs, f.Scripts)
		}
		// The manifest's processes: those of before.tar still there
		// (changed or not), those only in after.tar.zst added, none gone.
		var want []string
		for _, p := range man.BeforeVsAfter.Processes.Before {
			if !slices.ContainsFunc(man.BeforeVsAfter.Processes.Gone, func(g imgtest.ManifestProc) bool {
				return g.Pid == p.Pid
			}) {
				want = append(want, fmt.Sprintf("d%d-changed", p.Pid))
			}
		}
		for _, p := range man.BeforeVsAfter.Processes.AfterOnly {
			want = append(want, fmt.Sprintf("d%d-added", p.Pid))
		}
		var got []string
		for _, s := range f.Sections {
			got = append(got, s.ID)
			if s.Maps != 1 || s.Rects == 0 {
				t.Errorf("section %s: %d maps of B, %d rects", s.ID, s.Maps, s.Rects)
			}
			if !slices.Contains(f.Links, "#"+s.ID) {
				t.Errorf("section %s not linked", s.ID)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("sections %v, want %v", got, want)
		}
	})

	t.Run("hostile", func(t *testing.T) {
		c := imgtest.New(imgtest.X86_64)
		p := c.AddProcess(1, 0)
		p.Comm = `<img src=x onerror=alert(1)>`
		path := `/x/"><script>alert(2)</script><svg onload=alert(3)>.so`
		p.SetExe(path)
		p.AddVMA(0x400000, 0x402000, criuimg.ProtRead|criuimg.ProtExec, 0, 0, path)
		p.SetArgs([]string{`</svg></details><script>alert(4)</script>`, "'\"\x01"})
		out := filepath.Join(dir, "hostile.html")
		runReportCLI(t, "report", c.WriteTemp(t), "-o", out)
		f := openReport(t, browser, out, filepath.Join(dir, "hostile.png"))
		checkPage(t, f, []uint32{1})
		if len(f.Sections) == 1 && !strings.Contains(f.Sections[0].Summary, p.Comm) {
			t.Errorf("the comm is not shown as text: %q", f.Sections[0].Summary)
		}
	})

	t.Run("60000 mappings", func(t *testing.T) {
		if testing.Short() {
			t.Skip("60,000 mappings")
		}
		s := synth.ManyVMAs(60000, true)
		out := filepath.Join(dir, "vmas.html")
		runReportCLI(t, "report", s.WriteTemp(t), "-o", out)
		f := openReport(t, browser, out, filepath.Join(dir, "vmas.png"))
		checkPage(t, f, []uint32{synth.Pid})
		if f.Elapsed > 20*time.Second {
			t.Errorf("loaded in %v", f.Elapsed)
		}
		st, _ := os.Stat(out)
		t.Logf("60,000 mappings: %d bytes, loaded in %v", st.Size(), f.Elapsed)
	})
}

func runReportCLI(t *testing.T, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("report: exit %d: %s", code, stderr.String())
	}
}
