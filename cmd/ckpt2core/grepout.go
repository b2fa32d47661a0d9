package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ckpt2core/ckpt2core/internal/memsearch"
)

// grepOutput prints grep's hits of one checkpoint, text or JSON, process
// by process in pid order, whatever the order the processes are searched
// in: a process searched before its turn has its hits and diagnostics
// held (grepHeld) until every process before it is printed.
type grepOutput struct {
	out       *bufio.Writer
	stderr    io.Writer
	asJSON    bool
	container string         // a pod's container, named in every hit
	counts    *patternCounts // -f: the patterns counted
	hits      int            // printed
	failed    bool           // some process failed
	held      []*grepHeld    // by index in pid order
	next      int            // the index of the next process to print
}

// grepHeld is what grep found in a process searched before its turn to
// be printed: its hits as printed, its diagnostics.
type grepHeld struct {
	out    *spillBuffer
	errs   bytes.Buffer
	hits   int
	failed bool
}

// begin prints what comes before the hits.
func (o *grepOutput) begin() {
	if o.asJSON {
		if o.counts != nil {
			o.out.WriteString(`{"hits": `)
		}
		o.out.WriteString("[")
	}
}

// expect says how many processes will be searched.
func (o *grepOutput) expect(n int) { o.held = make([]*grepHeld, n) }

// process returns, for the process of index i (in pid order) about to
// be searched, the function taking its hits, the writer of its
// diagnostics, and the function to call once it is searched (failed: it
// failed), which prints what can now be printed.
func (o *grepOutput) process(i int) (emit func(memsearch.Hit) error, errw io.Writer, done func(failed bool) error) {
	h := &grepHeld{out: &spillBuffer{what: "grep output"}}
	direct := i == o.next // its turn: printed at once
	var w io.Writer = h.out
	errw = &h.errs
	if direct {
		w, errw = o.out, o.stderr
	}
	emit = func(hit memsearch.Hit) error {
		first := h.hits == 0
		if direct {
			first = o.hits == 0
		}
		if err := o.format(w, hit, first); err != nil {
			return &writeError{err}
		}
		if o.counts != nil {
			o.counts.add(hit)
		}
		h.hits++
		if direct {
			o.hits++
		}
		return nil
	}
	done = func(failed bool) error {
		h.failed = failed
		if direct {
			o.failed = o.failed || failed
			h.out.close()
			o.next++
		} else {
			o.held[i] = h
		}
		return o.flush()
	}
	return emit, errw, done
}

// flush prints the held processes whose turn has come.
func (o *grepOutput) flush() error {
	for ; o.next < len(o.held) && o.held[o.next] != nil; o.next++ {
		h := o.held[o.next]
		o.held[o.next] = nil
		if h.hits > 0 && o.asJSON && o.hits > 0 {
			o.out.WriteString(",")
		}
		if _, err := h.out.writeTo(o.out); err != nil {
			return err
		}
		h.errs.WriteTo(o.stderr)
		o.hits += h.hits
		o.failed = o.failed || h.failed
	}
	return nil
}

// format writes hit h to w; first says it is the first hit there.
func (o *grepOutput) format(w io.Writer, h memsearch.Hit, first bool) error {
	if !o.asJSON {
		if o.container != "" {
			fmt.Fprintf(w, "%s ", safe(o.container))
		}
		_, err := fmt.Fprintf(w, "%d %s %#x %s+%#x  %s\n", h.Pid, safe(h.Comm), h.Addr, safe(h.Mapping), h.Offset, grepContext(h))
		return err
	}
	jh := newJSONHit(h)
	jh.Container = o.container
	b, err := json.Marshal(jh)
	if err != nil {
		return err
	}
	if !first {
		io.WriteString(w, ",")
	}
	io.WriteString(w, "\n")
	_, err = w.Write(b)
	return err
}

// discard frees what is held of processes never printed (a run ended by
// an error).
func (o *grepOutput) discard() {
	for _, h := range o.held {
		if h != nil {
			h.out.close()
		}
	}
}

// end prints what comes after the hits (and the counts of -f), and
// flushes.
func (o *grepOutput) end() error {
	if o.asJSON {
		if o.hits > 0 {
			o.out.WriteString("\n")
		}
		if o.counts != nil {
			o.out.WriteString("]")
			o.counts.writeJSON(o.out)
		} else {
			o.out.WriteString("]\n")
		}
	} else if o.counts != nil {
		o.counts.writeText(o.out)
	}
	return o.out.Flush()
}
