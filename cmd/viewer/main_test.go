package main

import (
	"context"
	"encoding/json"
	"image"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub/hubtest"
	"camhub/internal/camlist"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// viewerBin builds the viewer binary once for all tests.
func viewerBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "camhub-viewer-test-")
		if binErr != nil {
			return
		}
		if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "viewer"), ".").CombinedOutput(); err != nil {
			binErr = &buildError{err, string(out)}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "viewer")
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func TestExampleConfigLoads(t *testing.T) {
	o, err := parse([]string{"--config", "../../configs/viewer.yaml"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.cams, []string{"front", "back"}) || o.nats != "nats://127.0.0.1:4222" ||
		o.size.Point != image.Pt(1280, 720) || o.LogLevel != "info" || o.json || o.command.name != "" ||
		o.format != "mp4" || o.outDir != "" || o.rewinding() {
		t.Fatalf("configs/viewer.yaml gave %+v", o)
	}
}

// The flags for one run are not settings: a file that sets one is wrong,
// and the environment does not set them.
func TestRunFlagsAreNotSettings(t *testing.T) {
	for _, key := range runFlags {
		_, err := parse([]string{"--config", writeFile(t, key+": x\n")}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), `unknown key "`+key+`"`) {
			t.Errorf("%s in the file: %v", key, err)
		}
	}
	t.Setenv("CAMHUB_SINCE", "20s")
	t.Setenv("CAMHUB_OUT_DIR", "clips")
	o, err := parse(nil, io.Discard)
	if err != nil || o.rewinding() || o.outDir != "clips" {
		t.Fatalf("parse with CAMHUB_SINCE and CAMHUB_OUT_DIR: %+v, %v", o, err)
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "viewer.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigErrorsNameKeyAndFile(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "cams: [front]\ncameras: [back]\n", `unknown key "cameras"`},
		{"bad size", "window-size: huge\n", `key "window-size": "huge" is not a valid WxH`},
		{"too small", "window-size: 10x10\n", `key "window-size"`},
		{"not yaml", "cams: [\n", "reading"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, tc.yaml)
			_, err := parse([]string{"--config", file}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("error %v, want it to contain %q and the file %s", err, tc.want, file)
			}
		})
	}
}

func TestCamsFromEverywhere(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		env        string
		args       []string
		want       []string
	}{
		{"yaml list", "cams: [front, back]\n", "", nil, []string{"front", "back"}},
		{"yaml string", "cams: \"front, back\"\n", "", nil, []string{"front", "back"}},
		{"environment", "cams: [front]\n", "side,porch", nil, []string{"side", "porch"}},
		{"flag", "cams: [front]\n", "side", []string{"--cams", "a,b", "--cams", "c"}, []string{"a", "b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("CAMHUB_CAMS", tc.env)
			}
			o, err := parse(append([]string{"--config", writeFile(t, tc.yaml)}, tc.args...), io.Discard)
			if err != nil || !slices.Equal(o.cams, tc.want) {
				t.Fatalf("cams %q, error %v; want %q", o.cams, err, tc.want)
			}
		})
	}
}

func TestBadArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad id", []string{"--cams", "front,back door"}, wire.IDRule},
		{"duplicate", []string{"--cams", "front,front"}, `"front" is listed twice`},
		{"unknown command", []string{"show"}, `unknown command "show"; the commands are: list, snapshot, export`},
		{"two commands", []string{"list", "more"}, `unexpected argument "more"`},
		{"json without list", []string{"--json"}, "--json applies to `viewer list` and `viewer events` only"},
		{"cams with list", []string{"list", "--cams", "front"}, "--cams applies to `viewer`, `viewer snapshot` and `viewer export` only"},
		{"window size with export", []string{"export", "--cam", "front", "--out", "f.mp4", "--window-size", "640x480"}, "--window-size applies to `viewer` only"},
		{"since with list", []string{"list", "--since", "5s"}, "--since applies to `viewer`, `viewer export` and `viewer events` only"},
		{"since with snapshot", []string{"snapshot", "--cam", "front", "--out", "f.jpg", "--since", "5s"}, "--since applies to `viewer`, `viewer export` and `viewer events` only"},
		{"at with export", []string{"export", "--cam", "front", "--out", "f.mp4", "--at", "2026-01-01T00:00:00Z"}, "--at applies to `viewer` only"},
		{"from with the grid", []string{"--from", "2026-01-01T00:00:00Z"}, "--from applies to `viewer export` only"},
		{"out with the grid", []string{"--out", "f.jpg"}, "--out applies to `viewer snapshot` and `viewer export` only"},
		{"cam with the grid", []string{"--cam", "front"}, "--cam applies to `viewer snapshot`, `viewer export` and `viewer events` only"},
		{"format with snapshot", []string{"snapshot", "--cam", "front", "--out-dir", "d", "--format", "avi"}, "--format applies to `viewer export` only"},
		{"speed without a rewind", []string{"--speed", "2"}, "--speed applies to a rewind only"},
		{"zero speed", []string{"--since", "5s", "--speed", "0"}, "--speed 0: must be from 0.1 to 1000"},
		{"NaN speed", []string{"--since", "5s", "--speed", "NaN"}, "--speed NaN: must be from"},
		{"tiny speed", []string{"--since", "5s", "--speed", "1e-12"}, "--speed 1e-12: must be from"},
		{"negative since", []string{"--since", "-5s"}, "--since -5s: must be positive"},
		{"since and at", []string{"--since", "5s", "--at", "2026-01-01T00:00:00Z"}, "give one"},
		{"at in the future", []string{"--at", "2999-01-01T00:00:00Z"}, "is in the future"},
		{"at not RFC 3339", []string{"--at", "08:00:05"}, "not an RFC 3339 time"},
		{"cam and cams", []string{"snapshot", "--cam", "front", "--cams", "back", "--out-dir", "d"}, "--cam and --cams both name the cameras"},
		{"bad cam", []string{"snapshot", "--cam", "front.door", "--out", "f.jpg"}, wire.IDRule},
		{"no camera", []string{"snapshot", "--out", "f.jpg"}, "which camera?"},
		{"nowhere", []string{"export", "--cam", "front"}, "where to? give --out FILE or --out-dir DIR"},
		{"out and out-dir", []string{"export", "--cam", "front", "--out", "f.mp4", "--out-dir", "d"}, "--out and --out-dir"},
		{"out with two cameras", []string{"export", "--cams", "front,back", "--out", "f.mp4"}, "--out names one file, for one camera"},
		{"format with out", []string{"export", "--cam", "front", "--out", "f.mp4", "--format", "avi"}, "--format applies with --out-dir"},
		{"bad format", []string{"export", "--cam", "front", "--out-dir", "d", "--format", "mkv"}, "want mp4 or avi"},
		{"since with from", []string{"export", "--cam", "front", "--out", "f.mp4", "--since", "5s", "--from", "2026-01-01T00:00:00Z"}, "--since cannot be combined with --from or --to"},
		{"from after to", []string{"export", "--cam", "front", "--out", "f.mp4", "--from", "2026-01-01T00:00:05Z", "--to", "2026-01-01T00:00:00Z"}, "is after --to"},
		{"bad flag", []string{"--frobnicate"}, "unknown flag: --frobnicate"},
		{"bad size", []string{"--window-size", "1280"}, "WIDTHxHEIGHT"},
		{"small size", []string{"--window-size", "100x100"}, "between 160x120 and 7680x4320"},
		{"bad log level", []string{"list", "--log-level", "loud"}, `log level "loud"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			if code := run(t.Context(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	var stderr, stdout strings.Builder
	if code := run(t.Context(), []string{"--help"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("--help: exit %d, stderr %q", code, stderr.String())
	}
	for _, want := range []string{"Commands:", "list ", "snapshot ", "export ", "--cams", "--window-size", "--json", "--since", "--at", "--speed",
		"--speed 2", "--cam", "--from", "--to", "--out", "--out-dir", "--format", "CAMHUB_", "Examples:", "viewer list --json",
		"viewer export --cam front --since 60s --out front.mp4", "viewer snapshot --cam front --out front.jpg", "Exit status"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help does not mention %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := run(t.Context(), []string{"--version"}, &stdout, io.Discard); code != 0 || !strings.HasPrefix(stdout.String(), "camhub viewer ") {
		t.Fatalf("--version: exit %d, %q", code, stdout.String())
	}
}

// report publishes a status report through JetStream, so the hub stored it
// when this returns.
func report(t *testing.T, js jetstream.JetStream, st wire.Status) {
	t.Helper()
	st.Time = time.Now()
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), wire.StatusSubject(st.ID), data); err != nil {
		t.Fatal(err)
	}
}

// list runs `viewer list` with args and returns its output.
func list(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	if code := run(t.Context(), append([]string{"list"}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("viewer list: exit %d, %s", code, stderr.String())
	}
	return stdout.String()
}

// tableStates reads the ID and STATE columns of `viewer list`.
func tableStates(t *testing.T, table string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "LAST SEEN") {
		t.Fatalf("no table header:\n%s", table)
	}
	states := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 2 {
			t.Fatalf("bad line %q", l)
		}
		states[f[0]] = f[1]
	}
	return states
}

func TestList(t *testing.T) {
	h := hubtest.Start(t, nil)
	url := h.ClientURL()
	js, err := jetstream.New(testenv.Conn(t, url))
	if err != nil {
		t.Fatal(err)
	}
	// long intervals first, so no camera can time out on a loaded machine
	// before the first listing
	report(t, js, wire.Status{ID: "front", Host: "pi-front", State: wire.StateStreaming, FPS: 15, Width: 640, Height: 480, IntervalMS: 60000})
	back := wire.Status{ID: "back", Host: "pi-back", State: wire.StateStreaming, FPS: 10, Width: 1280, Height: 720, IntervalMS: 60000}
	report(t, js, back)
	report(t, js, wire.Status{ID: "side", Host: "pi-side", State: wire.StateStreaming, FPS: 5, Width: 320, Height: 240, IntervalMS: 5000})
	report(t, js, wire.Status{ID: "garage", Host: "nuc", State: wire.StateSourceError, Error: "no such device", IntervalMS: 5000})

	table := list(t, "--nats", url)
	if got := tableStates(t, table); got["front"] != "live" || got["back"] != "live" || got["side"] != "live" || got["garage"] != "source-error" {
		t.Fatalf("states %v in\n%s", got, table)
	}
	for _, want := range []string{"pi-front", "640x480", "15.0", "1280x720", "(no such device)", "ago ("} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
	// sorted by id
	if strings.Index(table, "back") > strings.Index(table, "front") || strings.Index(table, "front") > strings.Index(table, "side") {
		t.Errorf("not sorted by id:\n%s", table)
	}

	// front stops; back says it reports every 100 ms, falls silent and is
	// offline after three missed reports; side, reporting every 5 s, stays
	// live
	report(t, js, wire.Status{ID: "front", Host: "pi-front", State: wire.StateStopped, IntervalMS: 100})
	back.IntervalMS = 100
	report(t, js, back)
	if got := tableStates(t, list(t, "--nats", url)); got["front"] != "offline" {
		t.Fatalf("front after stopping: %q", got["front"])
	}
	testenv.Eventually(t, 5*time.Second, "back offline after its last 100 ms report", func() bool {
		table = list(t, "--nats", url)
		got := tableStates(t, table)
		if got["back"] == "offline" && (got["front"] != "offline" || got["side"] != "live") {
			t.Fatalf("states %v in\n%s", got, table)
		}
		return got["back"] == "offline"
	})

	var entries []camlist.Entry
	out := list(t, "--nats", url, "--json")
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	states := map[string]camlist.Entry{}
	for _, e := range entries {
		states[e.ID] = e
	}
	if len(entries) != 4 || states["front"].State != "offline" || states["front"].ReportedState != "stopped" ||
		states["back"].State != "offline" || states["side"].State != "live" || states["side"].Width != 320 ||
		states["garage"].Error != "no such device" || states["side"].LastSeen.IsZero() {
		t.Fatalf("--json gave %+v", entries)
	}
}

func TestListNoHub(t *testing.T) {
	ns := testenv.NATS(t, nil) // a NATS server the hub never provisioned
	var stdout, stderr strings.Builder
	code := run(t.Context(), []string{"list", "--nats", ns.ClientURL()}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), camlist.ErrNoHub.Error()) {
		t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), camlist.ErrNoHub)
	}
}

func TestListNoServer(t *testing.T) {
	ns := testenv.NATS(t, nil)
	url := ns.ClientURL()
	ns.Shutdown() // nothing listens there now
	ns.WaitForShutdown()
	start := time.Now()
	var stderr strings.Builder
	code := run(t.Context(), []string{"list", "--nats", url}, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "connecting to NATS at "+url) {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to fail", d)
	}
}

func TestEmptyList(t *testing.T) {
	h := hubtest.Start(t, nil)
	if got := list(t, "--nats", h.ClientURL(), "--json"); strings.TrimSpace(got) != "[]" {
		t.Fatalf("--json of no cameras: %q", got)
	}
	if got := tableStates(t, list(t, "--nats", h.ClientURL())); len(got) != 0 {
		t.Fatalf("table of no cameras: %v", got)
	}
}

// Without a display the viewer says so and exits 1 instead of letting Qt
// abort the process.
func TestNoDisplay(t *testing.T) {
	cmd := exec.Command(viewerBin(t), "--cams", "front")
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DISPLAY=") && !strings.HasPrefix(e, "WAYLAND_DISPLAY=") && !strings.HasPrefix(e, "QT_QPA_PLATFORM=") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "DISPLAY is not set") {
		t.Fatalf("exit %v, output:\n%s", err, out)
	}
	cmd = exec.Command(viewerBin(t), "--cams", "front")
	cmd.Env = append(env, "DISPLAY=:7359")
	if _, err := os.Stat("/tmp/.X11-unix/X7359"); err == nil {
		t.Fatal("display :7359 exists here; pick another for this test")
	}
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "no X server listens") {
		t.Fatalf("exit %v, output:\n%s", err, out)
	}
}

func TestSecureExampleConfigLoads(t *testing.T) {
	o, err := parse([]string{"--config", "../../configs/viewer-secure.yaml", "list"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.auth.User != "family" || o.auth.PasswordFile != "/etc/camhub/family.pass" ||
		o.auth.TLSCA != "/etc/camhub/ca.pem" || o.nats != "nats://hub.lan:4222" {
		t.Fatalf("configs/viewer-secure.yaml gave %+v", o)
	}
}
