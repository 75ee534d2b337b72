package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The benchmark's parts run end to end on a few frames and the report
// reads what they wrote: the harness cannot rot between benchmark runs.
// The measurements themselves are not judged here; make bench does that.
func TestHarness(t *testing.T) {
	dir := t.TempDir()
	frames := filepath.Join(dir, "frames")
	if err := framesCmd([]string{"-out", frames, "-n", "4"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range sizes {
		fr, err := loadFrames(filepath.Join(frames, sizeName(s)))
		if err != nil || len(fr) != 4 {
			t.Fatalf("%s: %d frames, %v", sizeName(s), len(fr), err)
		}
		w, h, err := jpegSize(fr[0])
		if err != nil || w != s.X || h != s.Y {
			t.Fatalf("%s: a %dx%d frame, %v", sizeName(s), w, h, err)
		}
	}
	if _, err := os.Stat(filepath.Join(frames, "1280x720.avi")); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	res := &results{w: &out}
	fr, _ := loadFrames(filepath.Join(frames, "640x480"))
	for _, mode := range relayModes {
		r, err := relayOnce(mode, 2, 2, fr, 40)
		if err != nil {
			t.Fatalf("relay %s: %v", mode, err)
		}
		if r.Values["frames_per_s"] <= 0 {
			t.Fatalf("relay %s: %v", mode, r.Values)
		}
		r.Name = mode + " 1->1 640x480"
		r.Labels = map[string]string{"mode": mode, "topology": "1->1", "size": "640x480"}
		res.add(r)
	}
	if err := decodeCost(res, opts{frames: frames, quick: true}, map[string][][]byte{
		"640x480": fr, "1280x720": must(loadFrames(filepath.Join(frames, "1280x720"))),
	}); err != nil {
		t.Fatal(err)
	}

	in := filepath.Join(dir, "results.jsonl")
	if err := os.WriteFile(in, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(dir, "BENCHMARKS.md")
	if err := reportCmd([]string{"-in", in, "-zmq", filepath.Join(dir, "none.jsonl"), "-out", md}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Targets", "hub relay, memory buffer, 1->1 640x480", "| 1 → 1 | 640x480 |", "| 640x480 | 1/2 |"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the report lacks %q:\n%s", want, b)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
