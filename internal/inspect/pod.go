package inspect

import (
	"fmt"
	"io"
	"sort"
)

// PodReport is inspect's report on a CRI-O pod checkpoint (KEP-5823): the
// pod, and the report of each of its containers. Its JSON is the README's
// "pod checkpoint" schema; every key is always present.
//
//	{
//	  "checkpoint": string,            // what was inspected (path)
//	  "pod": {
//	    "name", "namespace", "uid", "id", "hostname", "log_directory",
//	    "engine", "engine_version": string,  // "" if unknown
//	    "version": int,                // pod.options "version"
//	    "layout": "directories" | "nested archives",
//	    "annotations": {string: string}      // pod.options "annotations"
//	  },
//	  "containers": [{
//	    "name", "directory", "id": string,   // pod.options; id "" if unknown
//	    "error": string,               // "" when read
//	    "report": Report               // or null: the container's report
//	  }],
//	  "unlisted": [string],            // directories pod.options does not name
//	  "warnings": [string]
//	}
type PodReport struct {
	Checkpoint string         `json:"checkpoint"`
	Pod        PodInfo        `json:"pod"`
	Containers []PodContainer `json:"containers"`
	Unlisted   []string       `json:"unlisted"`
	Warnings   []string       `json:"warnings"`
}

// PodInfo is what a pod checkpoint says of its pod (pod.dump, then
// pod.options' annotations).
type PodInfo struct {
	Name          string            `json:"name"`
	Namespace     string            `json:"namespace"`
	UID           string            `json:"uid"`
	ID            string            `json:"id"`
	Hostname      string            `json:"hostname"`
	LogDirectory  string            `json:"log_directory"`
	Engine        string            `json:"engine"`
	EngineVersion string            `json:"engine_version"`
	Version       int               `json:"version"`
	Layout        string            `json:"layout"`
	Annotations   map[string]string `json:"annotations"`
}

// PodContainer is one container of a pod report.
type PodContainer struct {
	Name      string  `json:"name"`
	Directory string  `json:"directory"`
	ID        string  `json:"id"`
	Error     string  `json:"error"`
	Report    *Report `json:"report"`
}

// The checkpointctl annotations (lib/annotations.go) CRI-O writes into
// pod.options.
const (
	AnnotationPodName       = "org.criu.checkpoint.pod.name"
	AnnotationPodID         = "org.criu.checkpoint.pod.id"
	AnnotationPodNamespace  = "org.criu.checkpoint.pod.namespace"
	AnnotationPodUID        = "org.criu.checkpoint.pod.uid"
	AnnotationEngine        = "org.criu.checkpoint.engine.name"
	AnnotationEngineVersion = "org.criu.checkpoint.engine.version"
)

// FillFromAnnotations sets the fields pod.dump left empty from pod.options'
// annotations.
func (p *PodInfo) FillFromAnnotations() {
	for _, f := range []struct {
		v   *string
		key string
	}{{&p.Name, AnnotationPodName}, {&p.ID, AnnotationPodID}, {&p.Namespace, AnnotationPodNamespace}, {&p.UID, AnnotationPodUID},
		{&p.Engine, AnnotationEngine}, {&p.EngineVersion, AnnotationEngineVersion}} {
		if *f.v == "" {
			*f.v = p.Annotations[f.key]
		}
	}
}

// WritePodText writes the report for people: the pod, then each
// container's report as WriteText writes it.
func WritePodText(w io.Writer, r *PodReport) error {
	ew := &errWriter{w: w}
	p := func(format string, a ...any) { fmt.Fprintf(ew, format, a...) }
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return clean(s)
	}
	p("Checkpoint:    %s\n", clean(r.Checkpoint))
	p("Pod:           %s (namespace %s, uid %s)\n", dash(r.Pod.Name), dash(r.Pod.Namespace), dash(r.Pod.UID))
	p("Pod id:        %s\n", dash(r.Pod.ID))
	p("Hostname:      %s\n", dash(r.Pod.Hostname))
	if r.Pod.LogDirectory != "" {
		p("Log directory: %s\n", clean(r.Pod.LogDirectory))
	}
	eng := r.Pod.Engine
	if r.Pod.EngineVersion != "" {
		eng += " " + r.Pod.EngineVersion
	}
	p("Engine:        %s\n", dash(eng))
	p("Layout:        %s (pod.options version %d)\n", r.Pod.Layout, r.Pod.Version)
	p("Containers:    %d\n", len(r.Containers))
	for _, c := range r.Containers {
		st := "read"
		if c.Error != "" {
			st = "NOT READ: " + clean(c.Error)
		}
		p("  %-20s %-14s %s  %s\n", clean(c.Name), dash(shortID(c.ID)), clean(c.Directory), st)
	}
	for _, d := range r.Unlisted {
		p("  (a directory pod.options does not name: %s)\n", clean(d))
	}
	keys := make([]string, 0, len(r.Pod.Annotations))
	for k := range r.Pod.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		p("Annotations:\n")
		for _, k := range keys {
			p("  %s=%s\n", clean(k), clean(r.Pod.Annotations[k]))
		}
	}
	for _, w := range r.Warnings {
		p("Warning: %s\n", clean(w))
	}
	for _, c := range r.Containers {
		if c.Report == nil {
			continue
		}
		p("\n=== Container %s (%s) ===\n", clean(c.Name), clean(c.Directory))
		if ew.err != nil {
			return ew.err
		}
		if err := WriteText(w, c.Report); err != nil {
			return err
		}
	}
	return ew.err
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
