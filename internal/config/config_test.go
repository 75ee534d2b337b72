package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func flags() (*pflag.FlagSet, *[]string, *time.Duration, *Bytes) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String(FileFlag, "", "")
	cams := fs.StringSlice("cams", nil, "")
	every := fs.Duration("every", time.Second, "")
	size := Bytes(1 << 20)
	fs.Var(&size, "max-size", "")
	return fs, cams, every, &size
}

func TestYAMLListAndSizes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("cams: [front, back]\nmax-size: 2GiB\n"), 0o600)
	fs, cams, every, size := flags()
	if err := Load(fs, []string{"--config", p}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(*cams, ",") != "front,back" || *size != 2<<30 || *every != time.Second {
		t.Fatalf("cams %v size %d every %v", *cams, *size, *every)
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	t.Setenv("CAMHUB_MAX_SIZE", "3MB")
	t.Setenv("CAMHUB_CAMS", "a,b,c")
	fs, cams, _, size := flags()
	if err := Load(fs, []string{"--cams", "x"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(*cams, ",") != "x" || *size != 3_000_000 {
		t.Fatalf("cams %v size %d", *cams, *size)
	}
	t.Setenv("CAMHUB_EVERY", "often")
	fs, _, _, _ = flags()
	if err := Load(fs, nil); err == nil || !strings.Contains(err.Error(), "CAMHUB_EVERY") {
		t.Fatalf("error %v, want one naming CAMHUB_EVERY", err)
	}
}

func TestMissingFile(t *testing.T) {
	fs, _, _, _ := flags()
	err := Load(fs, []string{"--config", "/nonexistent/camhub.yaml"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/camhub.yaml") {
		t.Fatalf("error %v, want one naming the file", err)
	}
}

func TestBytes(t *testing.T) {
	var b Bytes
	for in, want := range map[string]Bytes{"1GiB": 1 << 30, "512MB": 512e6, "300000": 300000, "8 MiB": 8 << 20} {
		if err := b.Set(in); err != nil || b != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1GiB"} {
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) accepted", in)
		}
	}
}
