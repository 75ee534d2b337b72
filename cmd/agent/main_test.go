package main

import (
	"bytes"
	"context"
	"image"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"camhub/agent"
	"camhub/internal/cli"
	"camhub/internal/config"
	"camhub/internal/testenv"
	"camhub/internal/version"
	"camhub/internal/wire"
)

const exampleConfig = "../../configs/agent.yaml"

// settingNames are the flags that are settings: every one but --config
// and --version.
func settingNames(fs *pflag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != config.FileFlag && f.Name != "version" {
			names = append(names, f.Name)
		}
	})
	return names
}

// The example file loads, has every key, and makes a valid configuration.
func TestExampleConfig(t *testing.T) {
	fs, s := flags()
	if err := config.Load(fs, []string{"--config", exampleConfig}, "version"); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range settingNames(fs) {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:`).Match(text) {
			t.Errorf("%s has no key %q", exampleConfig, name)
		}
	}
	if s.id != "front" || s.source != "testpattern" || s.nats != "nats://127.0.0.1:4222" || s.fps != 15 ||
		s.size.Point != image.Pt(640, 480) || s.quality.v != 80 || s.loop || s.reportInterval != 2*time.Second || s.LogLevel != "info" {
		t.Errorf("settings from %s: %+v", exampleConfig, s)
	}
	cfg := agent.Config{ID: s.id, Source: s.source, FPS: s.fps, Width: s.size.X, Height: s.size.Y,
		Quality: s.quality.v, Loop: s.loop, ReportInterval: s.reportInterval}
	if err := cfg.Validate(); err != nil {
		t.Errorf("%s: %v", exampleConfig, err)
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runCmd runs the command to its end, with a context that is already
// cancelled: a valid configuration starts, stops at once and returns 0.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBadConfigFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.mp4")
	for _, tc := range []struct {
		name, yaml string
		want       []string // in the error, besides the file name
	}{
		{"unknown key", "id: a\nfsp: 10\n", []string{`unknown key "fsp"`}},
		{"config key", "id: a\nconfig: other.yaml\n", []string{`unknown key "config"`}},
		{"fps not a number", "id: a\nfps: abc\n", []string{`"fps"`, "abc"}},
		{"quality too high", "id: a\nquality: 500\n", []string{`"quality"`, "500", "1-100"}},
		{"size without height", "id: a\nsize: 640\n", []string{`"size"`, "WIDTHxHEIGHT"}},
		{"bad interval", "id: a\nreport-interval: often\n", []string{`"report-interval"`}},
		{"not YAML", "id: [a\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.yaml)
			code, _, stderr := runCmd(t, "--config", path)
			if code != cli.ExitUsage {
				t.Errorf("exit code %d, want %d", code, cli.ExitUsage)
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
		})
	}

	// Values that parse but are not valid settings: the error names the setting.
	for _, tc := range []struct{ yaml, want string }{
		{"id: a.b\n", wire.IDRule},
		{"id: a\nfps: 1000\n", "fps"},
		{"id: a\nreport-interval: 10s\n", "report interval"},
		{"id: a\nsource: " + missing + "\n", "does not exist"},
		{"id: a\nsource: ftp://x/y\n", "source"},
		{"id: a\nlog-level: loud\n", "log-level"},
	} {
		code, _, stderr := runCmd(t, "--config", writeConfig(t, tc.yaml))
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit code %d, stderr %q; want %d and %q", tc.yaml, code, stderr, cli.ExitUsage, tc.want)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--id is required"},
		{[]string{"--id", "a", "--size", "640"}, "WIDTHxHEIGHT"},
		{[]string{"--id", "a", "--size", "0x480"}, "WIDTHxHEIGHT"},
		{[]string{"--id", "a", "--quality", "0"}, "1-100"},
		{[]string{"--id", "a", "--fps", "fast"}, "--fps"},
		{[]string{"--id", "a", "--bogus"}, "bogus"},
		{[]string{"--id", "a", "--codec", "mjpeg"}, `codec "mjpeg"`},
		{[]string{"--id", "a", "--codec", "h264", "--encoder", "nvenc"}, `encoder "nvenc"`},
		{[]string{"--id", "a", "--codec", "h264", "--bitrate", "-1"}, "bitrate -1"},
		{[]string{"--id", "a", "--source", "exec:ffmpeg -i x -f mpegts -"}, "needs codec h264"},
		{[]string{"--id", "a", "--codec", "h264", "--source", "exec:sh -c 'unclosed"}, "unclosed ' quote"},
		{[]string{"--id", "a", "--site", "the farm"}, `site "the farm"`},
		{[]string{"--id", "a", "extra"}, `unexpected argument "extra"`},
		{[]string{"--id", "a", "--config", "/nonexistent/agent.yaml"}, "/nonexistent/agent.yaml"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "--help") {
			t.Errorf("%q: exit code %d, stderr %q; want %d and %q", tc.args, code, stderr, cli.ExitUsage, tc.want)
		}
	}
}

func TestBadCodecEnvironment(t *testing.T) {
	t.Setenv("CAMHUB_CODEC", "vp9")
	code, _, stderr := runCmd(t, "--id", "a")
	if code != cli.ExitUsage || !strings.Contains(stderr, `codec "vp9"`) {
		t.Errorf("exit code %d, stderr %q", code, stderr)
	}
}

func TestBadEnvironment(t *testing.T) {
	t.Setenv("CAMHUB_QUALITY", "500")
	code, _, stderr := runCmd(t, "--id", "a")
	if code != cli.ExitUsage || !strings.Contains(stderr, "CAMHUB_QUALITY") {
		t.Errorf("exit code %d, stderr %q", code, stderr)
	}
}

func TestHelp(t *testing.T) {
	code, stdout, stderr := runCmd(t, "--help")
	if code != cli.ExitOK || stderr != "" {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"agent --id front --source testpattern",
		"agent --id door --source rtsp://user:pass@10.0.0.5/stream --nats nats://hub:4222",
		"agent --id cam0 --source 0",
		"/dev/video0", "appsink", "never enlarged", "CAMHUB_", "--report-interval", "--loop", "--config",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help does not say %q:\n%s", want, stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCmd(t, "--version")
	if code != cli.ExitOK || !strings.Contains(stdout, version.String()) {
		t.Errorf("exit code %d, stdout %q", code, stdout)
	}
}

// The command runs an agent with settings from a file, the environment and
// flags, and reports "stopped" when its context is cancelled (as on
// SIGINT or SIGTERM).
func TestRun(t *testing.T) {
	s := testenv.NATS(t, nil)
	nc := testenv.Conn(t, s.ClientURL())
	ch := make(chan *nats.Msg, 1024)
	if _, err := nc.ChanSubscribe(wire.SubjectPrefix+".cmdtest.*", ch); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "id: cmdtest\nsize: 320x240\nfps: 5\n")
	t.Setenv("CAMHUB_REPORT_INTERVAL", "300ms")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		code <- run(ctx, []string{"--config", path, "--nats", s.ClientURL(), "--fps", "30"}, &bytes.Buffer{}, &stderr)
	}()

	deadline := time.After(20 * time.Second)
	early := (<-chan int)(code) // nil once cancelled: then run is meant to return
	frames := 0
	var last *wire.Status
	for last == nil || last.State != wire.StateStopped {
		select {
		case m := <-ch:
			if _, kind, _ := wire.ParseSubject(m.Subject); kind == wire.KindFrames {
				f, err := wire.ParseFrame(m.Header)
				if err != nil || f.Width != 320 || f.Height != 240 {
					t.Fatalf("frame %+v: %v", f, err)
				}
				if frames++; frames == 10 {
					cancel()
					early = nil
				}
				continue
			}
			st, err := wire.ParseStatus(m.Subject, m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if st.IntervalMS != 300 {
				t.Errorf("interval %d ms, want 300 from the environment", st.IntervalMS)
			}
			last = st
		case c := <-early:
			t.Fatalf("run returned %d early; stderr %q", c, stderr.String())
		case <-deadline:
			t.Fatalf("%d frames, last status %+v", frames, last)
		}
	}
	select {
	case c := <-code:
		if c != cli.ExitOK {
			t.Errorf("exit code %d; stderr %q", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
	if int(last.FramesSent) != frames {
		t.Errorf("received %d frames, the stopped report says %d sent", frames, last.FramesSent)
	}
	if time.Since(last.Started) > 20*time.Second || last.FPS < 10 {
		t.Errorf("stopped report %+v: want about 30 fps from the flag", last)
	}
}

func TestSecureExampleConfig(t *testing.T) {
	fs, s := flags()
	if err := config.Load(fs, []string{"--config", "../../configs/agent-secure.yaml"}, "version"); err != nil {
		t.Fatal(err)
	}
	if s.id != "front" || s.auth.User != "front" || s.auth.PasswordFile != "/etc/camhub/front.pass" ||
		s.auth.TLSCA != "/etc/camhub/ca.pem" || s.nats != "nats://hub.lan:4222" {
		t.Fatalf("configs/agent-secure.yaml gave %+v", s)
	}
}

// --codec h264 from the environment: the test pattern arrives as H.264
// access units, a keyframe first, and the log says which encoder opened.
// An rtsp:// camera with --fps given: a warning that it does not apply.
func TestRunH264(t *testing.T) {
	s := testenv.NATS(t, nil)
	nc := testenv.Conn(t, s.ClientURL())
	ch := make(chan *nats.Msg, 1024)
	if _, err := nc.ChanSubscribe(wire.VideoFilter("h264test"), ch); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAMHUB_CODEC", "h264")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	stderr := &testenv.Buffer{}
	go func() {
		code <- run(ctx, []string{"--id", "h264test", "--nats", s.ClientURL(), "--fps", "30", "--size", "320x240"}, &bytes.Buffer{}, stderr)
	}()
	deadline := time.After(20 * time.Second)
	for n := 0; n < 10; n++ {
		select {
		case m := <-ch:
			v, err := wire.ParseVideo(m.Header)
			if err != nil || v.Width != 320 || v.Height != 240 || (n == 0 && !v.Key) {
				t.Fatalf("access unit %d: %+v: %v", n, v, err)
			}
		case c := <-code:
			t.Fatalf("run returned %d early; stderr %q", c, stderr.String())
		case <-deadline:
			t.Fatalf("%d access units; stderr %q", n, stderr.String())
		}
	}
	cancel()
	if c := <-code; c != cli.ExitOK {
		t.Errorf("exit code %d; stderr %q", c, stderr.String())
	}
	if !strings.Contains(stderr.String(), `msg="H.264 encoder opened"`) {
		t.Errorf("stderr %q does not say which encoder opened", stderr.String())
	}

	ctx, cancel = context.WithCancel(context.Background())
	stderr = &testenv.Buffer{}
	go func() {
		code <- run(ctx, []string{"--id", "ipcam", "--nats", s.ClientURL(), "--fps", "5", "--source", "rtsp://127.0.0.1:1/cam"}, &bytes.Buffer{}, stderr)
	}()
	testenv.Eventually(t, 20*time.Second, "the --fps warning", func() bool {
		return strings.Contains(stderr.String(), "--fps does not apply")
	})
	cancel()
	<-code
}
