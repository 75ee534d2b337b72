package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"camhub/hub"
)

func TestExampleConfigLoads(t *testing.T) {
	o, err := parse([]string{"--config", "../../configs/hub.yaml"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.hub
	if c.Listen != "0.0.0.0:4222" || c.Storage != hub.StorageMemory || c.Replay != 30*time.Second ||
		c.ReplayBytes != 1<<30 || c.MaxPayload != 8<<20 || c.Monitor != "127.0.0.1:8222" {
		t.Fatalf("configs/hub.yaml gave %+v", c)
	}
}

func TestSecureExampleConfigLoads(t *testing.T) {
	o, err := parse([]string{"--config", "../../configs/hub-secure.yaml"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.hub
	if c.Auth != "configs/users.yaml" || c.TLSCert != "/etc/camhub/hub-cert.pem" || c.TLSKey != "/etc/camhub/hub-key.pem" {
		t.Fatalf("configs/hub-secure.yaml gave %+v", c)
	}
	for _, v := range []string{"ADMIN", "BACK", "FAMILY", "NEIGHBOUR"} {
		t.Setenv("CAMHUB_"+v+"_PASSWORD", "pw")
	}
	users, err := hub.LoadUsers("../../" + c.Auth)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, u := range users {
		got[u.Username] = fmt.Sprint(u.Permissions != nil)
	}
	if len(users) != 5 || got["admin"] != "false" || got["front"] != "true" || got["neighbour"] != "true" {
		t.Fatalf("configs/users.yaml gave %v", got)
	}
}

// Secrets never show in --help, nor a users file's hash in errors.
func TestHelpHasNoSecrets(t *testing.T) {
	var help strings.Builder
	t.Setenv("CAMHUB_ADMIN_PASSWORD", "s3cret-admin")
	if _, err := parse([]string{"--help"}, &help); !errors.Is(err, pflag.ErrHelp) {
		t.Fatal(err)
	}
	if !strings.Contains(help.String(), "--auth") || strings.Contains(help.String(), "s3cret") {
		t.Fatalf("help:\n%s", help.String())
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hub.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigErrorsNameKeyAndFile(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "replay: 10s\nreplay-byte: 1GiB\n", `unknown key "replay-byte"`},
		{"bad duration", "replay: soon\n", `key "replay": "soon" is not a valid duration`},
		{"bad size", "replay-bytes: lots\n", `key "replay-bytes": "lots" is not a valid size`},
		{"bad storage", "storage: tape\n", `storage "tape"`},
		{"not yaml", "replay: [\n", "reading"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, tc.yaml)
			_, err := parse([]string{"--config", file}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if tc.name != "bad storage" && !strings.Contains(err.Error(), file) {
				t.Fatalf("error %v does not name the file %s", err, file)
			}
		})
	}
}

// Flags override the environment, which overrides the file.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "replay: 10s\nreplay-bytes: 100MiB\nstorage: file\n")
	t.Setenv("CAMHUB_REPLAY_BYTES", "200MiB")
	t.Setenv("CAMHUB_REPLAY", "20s")
	o, err := parse([]string{"--config", file, "--replay", "40s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.hub.Replay != 40*time.Second || o.hub.ReplayBytes != 200<<20 || o.hub.Storage != hub.StorageFile {
		t.Fatalf("got %+v", o.hub)
	}
	t.Setenv("CAMHUB_CONFIG", file)
	t.Setenv("CAMHUB_REPLAY", "banana")
	if _, err := parse(nil, io.Discard); err == nil || !strings.Contains(err.Error(), "CAMHUB_REPLAY") {
		t.Fatalf("a bad CAMHUB_REPLAY: error %v, want one naming the variable", err)
	}
}

// The real binary starts, says it is ready, and stops cleanly on SIGTERM.
func TestBinaryStartsAndStops(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hub")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--monitor", "127.0.0.1:0", "--storage", "file", "--store-dir", t.TempDir(),
		"--data", filepath.Join(t.TempDir(), "data"))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	var seen []string
	for lines.Scan() {
		seen = append(seen, lines.Text())
		if strings.Contains(lines.Text(), `msg="replay buffer ready" stream=CAMS storage=file`) {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		seen = append(seen, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("hub exited with %v; log:\n%s", err, strings.Join(seen, "\n"))
	}
	if !strings.Contains(strings.Join(seen, "\n"), "camhub hub stopped") {
		t.Fatalf("no clean stop in the log:\n%s", strings.Join(seen, "\n"))
	}
	// a plain hub detects motion, and sizes its file store for events and clips
	for _, want := range []string{"msg=\"events and clips ready\"", "msg=\"motion detector running\"", "file_store="} {
		if !strings.Contains(strings.Join(seen, "\n"), want) {
			t.Errorf("no %s in the log:\n%s", want, strings.Join(seen, "\n"))
		}
	}
}

func TestHelpAndBadArgs(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "--replay-bytes") || errOut.Len() != 0 {
		t.Fatalf("--help: code %d, stdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"--storage", "tape"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "storage") || out.Len() != 0 {
		t.Fatalf("bad storage: code %d, stderr %q, stdout %q", code, errOut.String(), out.String())
	}
}

func TestClusterExampleConfigsLoad(t *testing.T) {
	o, err := parse([]string{"--config", "../../configs/hub-cluster.yaml"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.hub
	if c.Cluster != "0.0.0.0:6222" || c.ClusterName != "camhub" || c.Replicas != 3 || c.LeafListen != "0.0.0.0:7422" ||
		c.Routes != "nats://a:6222,nats://b:6222,nats://c:6222" || c.ServerName != "camhub-a" {
		t.Fatalf("configs/hub-cluster.yaml gave %+v", c)
	}
	o, err = parse([]string{"--config", "../../configs/hub-site.yaml"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c := o.hub; c.Leaf != "nats://central:7422" || c.Domain != "garden" {
		t.Fatalf("configs/hub-site.yaml gave %+v", c)
	}
}

func TestClusterFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--routes", "nats://a:6222"}, "routes needs --cluster"},
		{[]string{"--replicas", "3"}, "needs a cluster"},
		{[]string{"--leaf", "nats://central:7422"}, "needs --domain"},
		{[]string{"--cluster", ":6222"}, "cluster needs --routes"},
	} {
		var stderr strings.Builder
		if code := run(t.Context(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("hub %v: exit %d, %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// Motion settings come from flags and YAML; per-camera settings are a YAML
// map (or JSON), checked at start.
func TestMotionSettings(t *testing.T) {
	o, err := parse([]string{"--config", writeFile(t, `motion-threshold: 30
motion-mask: "0,0 1,0 1,0.1 0,0.1"
pre-roll: 2s
motion-cameras:
  garden:
    mask: "0,0.9 1,0.9 1,1 0,1"
    off-delay: 10s
  door:
    enabled: false
`)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := o.motion.Camera()
	if err != nil {
		t.Fatal(err)
	}
	if !cam.Enabled || cam.Motion.Threshold != 30 || len(cam.Motion.Masks) != 1 || cam.PreRoll != 2*time.Second {
		t.Errorf("global settings %+v", cam)
	}
	garden, err := o.motion.Cameras["garden"].Apply(cam)
	if err != nil || garden.Motion.OffDelay != 10*time.Second || garden.Motion.Masks[0][0].Y != 0.9 || garden.Motion.Threshold != 30 {
		t.Errorf("garden: %+v, %v", garden, err)
	}
	if door, _ := o.motion.Cameras["door"].Apply(cam); door.Enabled {
		t.Error("door: enabled")
	}
	for _, args := range [][]string{
		{"--motion-cameras", `{"garden":{"mask":"0,0 2,0 1,1"}}`},
		{"--motion-cameras", `{"garden":{"sensitivity":3}}`},
		{"--motion-mask", "0,0 1,0"},
		{"--motion-fps", "0"},
	} {
		if _, err := parse(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if o, err := parse([]string{"--motion=false"}, io.Discard); err != nil || o.motion.Enabled {
		t.Errorf("--motion=false: %v", err)
	}
}

// Notifications and MQTT from the YAML file and the environment.
func TestNotifyAndMQTTSettings(t *testing.T) {
	t.Setenv("CAMHUB_MQTT", "127.0.0.1:1883")
	t.Setenv("CAMHUB_NOTIFY_RETRIES", "2")
	o, err := parse([]string{"--config", writeFile(t, `
notify:
  ntfy:
    - {url: "https://ntfy.sh/garden", token-env: NTFY_TOKEN, cams: [garden]}
notify-webhook: ["http://127.0.0.1:9/hook"]
snapshot-every: 30s
`)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := o.notify.Config()
	if err != nil {
		t.Fatal(err)
	}
	if o.hub.MQTT != "127.0.0.1:1883" || !o.ha.discovery || o.ha.snapshotEvery != 30*time.Second ||
		len(c.Targets.Ntfy) != 1 || c.Targets.Ntfy[0].TokenEnv != "NTFY_TOKEN" || len(c.Targets.Webhooks) != 1 || c.Settings.Retries != 2 {
		t.Fatalf("%+v %+v", o, c)
	}
	if _, err := parse([]string{"--mqtt", ":1883", "--nats", "nats://x:4222"}, io.Discard); err == nil || !strings.Contains(err.Error(), "mqtt") {
		t.Fatalf("--mqtt with --nats: %v", err)
	}
}
