package hub_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub"
	"camhub/internal/natsconn"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// The agent role's template grants exactly the wire contract's subjects of
// its cameras, the small tier's included.
func TestAgentPermissionsTemplate(t *testing.T) {
	p := hub.AgentPermissions([]string{"front"})
	want := []string{"cams.front.frames", "cams.front.video.key", "cams.front.video.delta", "cams.front.status",
		"cams.front.lo.frames", "cams.front.lo.video.key", "cams.front.lo.video.delta"}
	got := slices.Clone(p.Publish.Allow)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || len(p.Publish.Deny) != 0 {
		t.Fatalf("agent publishes %v (deny %v), want exactly %v", p.Publish.Allow, p.Publish.Deny, want)
	}
}

// An agent publishes its camera's small tier, and nothing else under it:
// another kind after lo, another camera's small tier, a fifth token. The
// hub does not store the small tier (CAMS holds the main tier alone).
func TestAgentPublishesItsSmallTierOnly(t *testing.T) {
	h, pw := secureHub(t, config())
	admin := dial(t, h.ClientURL(), natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}, quiet())
	all, err := admin.SubscribeSync("cams.>")
	if err != nil {
		t.Fatal(err)
	}
	admin.Flush()
	logs := newLogLines()
	agent := dial(t, h.ClientURL(), natsconn.Auth{User: "front", PasswordFile: pw["front"]}, logs.logger())
	for _, subj := range []string{"cams.front.lo.status", "cams.back.lo.frames", "cams.front.lo.video.other",
		"cams.front.lo.frames.x", "cams.front.lo", "cams.front.hi.frames"} {
		if err := agent.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
		logs.wait(t, "Permissions Violation for Publish", subj)
	}
	allowed := []string{wire.LoFramesSubject("front"), wire.LoVideoSubject("front", true), wire.LoVideoSubject("front", false)}
	for _, subj := range allowed {
		m := nats.NewMsg(subj)
		m.Header = wire.Frame{Seq: 1, Time: time.Now(), Width: 8, Height: 8}.Header()
		m.Data = []byte("x")
		if err := agent.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	agent.Flush()
	for _, want := range allowed {
		m, err := all.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != want {
			t.Fatalf("got %s, want %s (a refused subject came through)", m.Subject, want)
		}
	}
	// Published after the small tier: once it is stored, the small tier
	// would be too.
	publishFrame(t, agent, "front", 1)
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), wire.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the main frame stored", func() bool {
		info, err := st.Info(t.Context())
		return err == nil && info.State.Msgs == 1
	})
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter("cams.*.lo.>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 0 {
		t.Fatalf("CAMS stored the small tier: %v", info.State.Subjects)
	}
}

// A viewer limited to front reads front's small tier, and not back's.
func TestViewerReadsItsCamerasSmallTier(t *testing.T) {
	h, pw := secureHub(t, config())
	admin := dial(t, h.ClientURL(), natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}, quiet())
	logs := newLogLines()
	v := dial(t, h.ClientURL(), natsconn.Auth{User: "frontonly", PasswordFile: pw["frontonly"]}, logs.logger())
	lo, err := v.SubscribeSync(wire.LoFramesSubject("front"))
	if err != nil {
		t.Fatal(err)
	}
	vid, err := v.SubscribeSync(wire.LoVideoFilter("front"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.SubscribeSync(wire.LoFramesSubject("back")); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, "Permissions Violation for Subscription", wire.LoFramesSubject("back"))
	v.Flush()
	for _, subj := range []string{wire.LoFramesSubject("front"), wire.LoVideoSubject("front", true)} {
		if err := admin.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	admin.Flush()
	if _, err := lo.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("front's small tier: %v", err)
	}
	if _, err := vid.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("front's small-tier video: %v", err)
	}
}
