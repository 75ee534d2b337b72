package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPendingCommit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "clip.mp4")
	p, err := New(out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Discard()
	if !strings.HasSuffix(p.Name(), ".mp4") || filepath.Dir(p.Name()) != dir {
		t.Fatalf("temporary file %s: want .mp4 in %s", p.Name(), dir)
	}
	if _, err := p.WriteString("frames"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("%s exists before Commit: %v", out, err)
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	p.Discard() // after Commit: nothing
	b, err := os.ReadFile(out)
	if err != nil || string(b) != "frames" {
		t.Fatalf("after Commit: %q, %v", b, err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", fi.Mode().Perm())
	}
	assertOnly(t, dir, "clip.mp4")
}

func TestPendingClosedByWriter(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "clip.avi")
	p, err := New(out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Discard()
	p.Close() // a video writer opens the file by name
	if err := os.WriteFile(p.Name(), []byte("avi"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir, "clip.avi")
}

func TestPendingDiscard(t *testing.T) {
	dir := t.TempDir()
	p, err := New(filepath.Join(dir, "clip.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	p.WriteString("half a clip")
	p.Discard()
	assertOnly(t, dir)
}

func TestNewMissingDirectory(t *testing.T) {
	_, err := New(filepath.Join(t.TempDir(), "no", "clip.mp4"))
	if err == nil || strings.Contains(err.Error(), ".part") || !strings.Contains(err.Error(), "clip.mp4") {
		t.Fatalf("error %v: want one naming clip.mp4 and not the temporary file", err)
	}
}

func TestWriteFileMode(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "key")
	if err := WriteFileMode(out, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v, want mode 0600", fi, err)
	}
	assertOnly(t, dir, "key")
}

// assertOnly checks that dir holds exactly the names given.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}
