package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"camhub/internal/cli"
)

func TestLoFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr; empty: starts
	}{
		{[]string{"--id", "a", "--lo-size", "320x180"}, ""},
		{[]string{"--id", "a", "--lo-size", "320x180", "--lo-fps", "5", "--lo-quality", "60"}, ""},
		{[]string{"--id", "a", "--lo-size", "640x360"}, "at most half"},
		{[]string{"--id", "a", "--lo-size", "320"}, "WIDTHxHEIGHT"},
		{[]string{"--id", "a", "--lo-quality", "60"}, "give --lo-size"},
		{[]string{"--id", "a", "--lo-size", "320x180", "--lo-codec", "h264"}, ""},
		{[]string{"--id", "a", "--lo-size", "320x180", "--lo-codec", "vp8"}, "lo-codec"},
		{[]string{"--id", "a", "--codec", "h264", "--source", "rtsp://cam/main", "--lo-size", "320x180"}, "lo-source"},
		{[]string{"--id", "a", "--lo-source", "rtsp://cam/sub", "--lo-source-file", "x"}, "not both"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if tc.want == "" {
			if code != cli.ExitOK {
				t.Errorf("%q: exit code %d, stderr %q", tc.args, code, stderr)
			}
			continue
		}
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit code %d, stderr %q; want %q", tc.args, code, stderr, tc.want)
		}
	}
}

// The sub-stream's URL, with its password, can come from a file and the
// environment; a mistake in it never prints the password.
func TestLoSourceSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub.url")
	if err := os.WriteFile(file, []byte("http://user:hunter2@cam/sub\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "--id", "a", "--codec", "h264", "--source", "rtsp://cam/main", "--lo-source-file", file)
	if code != cli.ExitUsage || !strings.Contains(stderr, "rtsp://") || strings.Contains(stderr, "hunter2") {
		t.Errorf("exit code %d, stderr %q", code, stderr)
	}
	t.Setenv("CAMHUB_LO_SIZE", "160x120")
	if code, _, stderr := runCmd(t, "--id", "a"); code != cli.ExitOK {
		t.Errorf("CAMHUB_LO_SIZE: exit code %d, stderr %q", code, stderr)
	}
}
