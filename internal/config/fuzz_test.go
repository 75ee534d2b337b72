package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// FuzzLoad feeds arbitrary YAML files to Load: it must never panic, and a
// file it refuses gets an error that names the file.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"cams: [front, back]\nmax-size: 2GiB\nevery: 5s\n",
		"every: soon\n",
		"unknown: 1\n",
		"cams: {a: b}\n",
		"max-size: -1\n",
		"max-size: [1, 2]\n",
		"every: 99999999999999999999h\n",
		"- a\n- b\n",
		"cams: &a [*a]\n",
		"\t: :\n",
		"",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml string) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		fs, _, _, _ := flags()
		fs.SetOutput(discard{})
		err := Load(fs, []string{"--config", p})
		if err != nil && !errors.Is(err, pflag.ErrHelp) && !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
