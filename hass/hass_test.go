package hass_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/hass"
	"camhub/hub"
	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// client is a mosquitto_sub or mosquitto_pub process (Debian's
// mosquitto-clients: scripts/deps.sh test).
type client struct {
	cmd  *exec.Cmd
	out  testenv.Buffer
	done chan struct{}
	err  error
}

func mosquitto(t *testing.T, tool string, args ...string) *client {
	t.Helper()
	c := &client{cmd: exec.Command(tool, args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("%s (apt-get install mosquitto-clients): %v", tool, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// wait waits for the process to exit and returns its error.
func (c *client) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v: %s", c.cmd.Path, d, c.out.String())
		return nil
	}
}

func (c *client) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// lines are the "topic payload" lines mosquitto_sub -v printed on topic.
func (c *client) lines(topic string) []string {
	var out []string
	for _, l := range strings.Split(c.out.String(), "\n") {
		if t, p, ok := strings.Cut(l, " "); ok && t == topic {
			out = append(out, p)
		}
	}
	return out
}

// subscribed waits until sub (subscribed to filter's topics) receives what
// NATS publishes on probe, so that it is known to be subscribed.
func subscribed(t *testing.T, nc *nats.Conn, sub *client, probe string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "mosquitto_sub subscribed", func() bool {
		if sub.exited() {
			t.Fatalf("mosquitto_sub exited: %s", sub.out.String())
		}
		_ = nc.Publish(probe, []byte("probe"))
		_ = nc.Flush()
		return strings.Contains(sub.out.String(), "probe")
	})
}

func status(id, codec string) []byte {
	b, _ := json.Marshal(wire.Status{ID: id, Host: "pi", State: wire.StateStreaming, FPS: 9.5, Width: 320, Height: 240,
		Started: time.Now(), Time: time.Now(), IntervalMS: 2000, Version: "v-test", Codec: codec})
	return b
}

func startPublisher(t *testing.T, nc *nats.Conn, cfg hass.Config) *hass.Publisher {
	t.Helper()
	p, err := hass.New(nc, cfg, testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(testenv.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Through the hub's MQTT listener, with a real MQTT client: discovery
// configs for every camera at start, for a camera that joins, and again
// after Home Assistant's birth message; motion ON and OFF on
// cams/<id>/motion; a JPEG on cams/<id>/snapshot.
func TestHomeAssistantOverMQTT(t *testing.T) {
	cfg := hubtest.Config()
	cfg.MQTT = "127.0.0.1:0"
	h, js := hubtest.StartJS(t, &cfg)
	host, port := splitAddr(t, h.MQTTAddr())
	nc := testenv.Conn(t, h.ClientURL())
	ctx := testenv.Context(t, time.Minute)

	// front is known before the publisher starts: it is in the camera list
	if _, err := js.Publish(ctx, wire.StatusSubject("front"), status("front", wire.CodecJPEG)); err != nil {
		t.Fatal(err)
	}
	disc := mosquitto(t, "mosquitto_sub", "-h", host, "-p", port, "-t", "homeassistant/#", "-v", "-q", "0")
	subscribed(t, nc, disc, "homeassistant.probe")
	motion := mosquitto(t, "mosquitto_sub", "-h", host, "-p", port, "-t", "cams/front/motion", "-t", "homeassistant/probe2", "-v")
	subscribed(t, nc, motion, "homeassistant.probe2")

	p := startPublisher(t, h.Conn(), hass.Config{SnapshotEvery: time.Second})
	configs := func(id string) [3]int {
		var n [3]int
		for i, obj := range []string{"binary_sensor/camhub_" + id + "/motion", "sensor/camhub_" + id + "/fps", "camera/camhub_" + id + "/snapshot"} {
			n[i] = len(disc.lines("homeassistant/" + obj + "/config"))
		}
		return n
	}
	testenv.Eventually(t, 10*time.Second, "front's discovery configs", func() bool { return configs("front") == [3]int{1, 1, 1} })

	var bs map[string]any
	if err := json.Unmarshal([]byte(disc.lines("homeassistant/binary_sensor/camhub_front/motion/config")[0]), &bs); err != nil {
		t.Fatal(err)
	}
	if bs["state_topic"] != "cams/front/motion" || bs["device_class"] != "motion" || bs["payload_on"] != "ON" ||
		bs["value_template"] != "{{ value_json.state }}" || bs["unique_id"] != "camhub_front_motion" {
		t.Fatalf("binary_sensor config: %v", bs)
	}
	var cam, fps map[string]any
	json.Unmarshal([]byte(disc.lines("homeassistant/camera/camhub_front/snapshot/config")[0]), &cam)
	json.Unmarshal([]byte(disc.lines("homeassistant/sensor/camhub_front/fps/config")[0]), &fps)
	if cam["topic"] != "cams/front/snapshot" || fps["state_topic"] != "cams/front/status" || fps["unit_of_measurement"] != "fps" {
		t.Fatalf("camera %v, sensor %v", cam, fps)
	}

	// a camera that joins gets its configs
	if err := nc.Publish(wire.StatusSubject("back"), status("back", wire.CodecH264)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "back's discovery configs", func() bool { return configs("back") == [3]int{1, 1, 1} })

	// Home Assistant's birth message: every config again
	pub := mosquitto(t, "mosquitto_pub", "-h", host, "-p", port, "-t", "homeassistant/status", "-m", "online")
	if err := pub.wait(t, 10*time.Second); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, pub.out.String())
	}
	testenv.Eventually(t, 10*time.Second, "the configs again after the birth message", func() bool {
		return configs("front") == [3]int{2, 2, 2} && configs("back") == [3]int{2, 2, 2}
	})
	if s := p.Stats(); s.Cameras != 2 || s.Announces != 2 {
		t.Fatalf("%+v", s)
	}

	// motion ON, then OFF, as the detector publishes it
	eid := wire.EventID("front", time.Now())
	for _, state := range []string{wire.MotionOn, wire.MotionOff} {
		b, _ := json.Marshal(wire.Motion{Camera: "front", State: state, Time: time.Now(), Event: eid, Score: 0.03})
		if err := nc.Publish(wire.MotionSubject("front"), b); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "motion ON and OFF over MQTT", func() bool { return len(motion.lines("cams/front/motion")) == 2 })
	for i, want := range []string{wire.MotionOn, wire.MotionOff} {
		m, err := wire.ParseMotion(wire.MotionSubject("front"), []byte(motion.lines("cams/front/motion")[i]))
		if err != nil || m.State != want || m.Event != eid {
			t.Fatalf("motion message %d: %v %+v", i, err, m)
		}
	}

	// the snapshot topic carries the newest frame, a JPEG
	snap := filepath.Join(t.TempDir(), "snap.jpg")
	f, err := os.Create(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &client{cmd: exec.Command("mosquitto_sub", "-h", host, "-p", port, "-t", "cams/front/snapshot", "-C", "1", "-N"), done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = f, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.done })
	frame := testenv.Picture(t, 7, 320, 240, 0)
	// frames keep arriving until the client, once subscribed, has one
	for seq := uint64(1); !s.exited(); seq++ {
		if _, err := js.PublishMsg(ctx, testenv.FrameMsg("front", seq, time.Now(), frame, 320, 240)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.done:
		case <-time.After(500 * time.Millisecond): // a frame rate, not synchronisation
		}
		if seq > 60 {
			t.Fatalf("no snapshot within 30 s: %s", s.out.String())
		}
	}
	got, _ := os.ReadFile(snap)
	if !bytes.Equal(got, frame) || !wire.LooksLikeJPEG(got) {
		t.Fatalf("snapshot: %d bytes, want the frame's %d", len(got), len(frame))
	}
}

// A secured hub: MQTT over TLS with the hub's CA, logging in as a hub
// user with its password; a wrong password is refused, and a viewer of
// one camera cannot read another's over MQTT.
func TestMQTTSecure(t *testing.T) {
	data := t.TempDir()
	cfg := hubtest.Config()
	cfg.Data, cfg.MQTT = data, "127.0.0.1:0"
	h := hubtest.Start(t, &cfg)
	st, err := hub.OpenStore(data)
	if err != nil {
		t.Fatal(err)
	}
	_, pw, err := st.Add(hub.NewUser{Name: "ha", Role: hub.RoleViewer, Cams: []string{"front"}, Password: true})
	if err != nil {
		t.Fatal(err)
	}
	_, port := splitAddr(t, h.MQTTAddr())
	ca := filepath.Join(data, hub.CAFile)
	args := func(user, pass string, more ...string) []string {
		return append([]string{"-h", "localhost", "-p", port, "--cafile", ca, "-u", user, "-P", pass}, more...)
	}
	nc := h.Conn()

	// The hub applies the new user within its users poll: until then the
	// login is refused and mosquitto_sub exits, and is started again. A
	// client still connecting is left alone: on a loaded machine the TLS
	// handshake and the MQTT session the hub keeps in JetStream can take
	// seconds.
	var front *client
	testenv.Eventually(t, 60*time.Second, "the user logging in over TLS", func() bool {
		if front == nil || front.exited() {
			if front != nil {
				t.Logf("not yet: %s", front.out.String())
			}
			// what Home Assistant subscribes to: discovery, and a camera's topics
			front = mosquitto(t, "mosquitto_sub", args("ha", pw, "-t", "cams/front/motion", "-t", "homeassistant/#",
				"-t", "cams/front/status", "-t", "cams/front/snapshot", "-v")...)
		}
		_ = nc.Publish("homeassistant.probe", []byte("probe"))
		return strings.Contains(front.out.String(), "probe")
	})
	b, _ := json.Marshal(wire.Motion{Camera: "front", State: wire.MotionOn, Time: time.Now(), Event: wire.EventID("front", time.Now())})
	if err := nc.Publish(wire.MotionSubject("front"), b); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "front's motion over MQTT", func() bool { return len(front.lines("cams/front/motion")) == 1 })
	if strings.Contains(front.out.String(), "denied") {
		t.Fatalf("a subscription of a viewer of front was refused: %s", front.out.String())
	}

	// a wrong password, and no TLS, are refused
	wrong := mosquitto(t, "mosquitto_sub", args("ha", pw+"x", "-t", "cams/front/motion", "-C", "1")...)
	if err := wrong.wait(t, 30*time.Second); err == nil || !strings.Contains(strings.ToLower(wrong.out.String()), "not authorised") {
		t.Fatalf("a wrong password: %v: %s", err, wrong.out.String())
	}
	plain := mosquitto(t, "mosquitto_sub", "-d", "-h", "localhost", "-p", port, "-u", "ha", "-P", pw, "-t", "cams/front/motion", "-C", "1", "-W", "3")
	_ = plain.wait(t, 20*time.Second)
	if out := plain.out.String(); !strings.Contains(out, "sending CONNECT") || strings.Contains(out, "CONNACK") {
		t.Fatalf("a login without TLS: %s", out)
	}

	// another camera's motion: the subscription is refused, nothing arrives
	back := mosquitto(t, "mosquitto_sub", args("ha", pw, "-t", "cams/back/motion", "-v", "-C", "1", "-W", "10")...)
	for !back.exited() {
		b, _ := json.Marshal(wire.Motion{Camera: "back", State: wire.MotionOn, Time: time.Now(), Event: wire.EventID("back", time.Now())})
		_ = nc.Publish(wire.MotionSubject("back"), b)
		select {
		case <-back.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !strings.Contains(back.out.String(), "subscription requests were denied") || strings.Contains(back.out.String(), "cams/back/motion") {
		t.Fatalf("a viewer of front read back's motion: %v: %s", back.err, back.out.String())
	}
}

func splitAddr(t *testing.T, addr string) (string, string) {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok || port == "0" || port == "" {
		t.Fatalf("MQTT address %q", addr)
	}
	return host, port
}
