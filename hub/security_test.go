package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"camhub/hub"
	"camhub/internal/natsconn"
	"camhub/internal/replay"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// Attacks a viewer may try on a secured hub, through real clients with the
// real permissions; the "frontonly" viewer plays the neighbour, "all" the
// family.

// consumerNames lists the consumers of the replay buffer, as the admin.
func consumerNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, wire.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	l := st.ConsumerNames(ctx)
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func hasConsumer(t *testing.T, js jetstream.JetStream, name string) bool {
	for _, n := range consumerNames(t, js) {
		if n == name {
			return true
		}
	}
	return false
}

// waitDeleted waits for the guard to delete consumer name, and checks it
// counted that one deletion under reason (the first of that reason). The
// guard counts a deletion once the server has answered it, which can be
// after the consumer is gone from the listing.
func waitDeleted(t *testing.T, h *hub.Server, js jetstream.JetStream, name, reason string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, name+" to be deleted", func() bool { return !hasConsumer(t, js, name) })
	testenv.Eventually(t, 10*time.Second, name+"'s deletion to be counted", func() bool { return guardDeleted(t, h, reason) >= 1 })
	if n := guardDeleted(t, h, reason); n != 1 {
		t.Fatalf("%s deletions counted: %v", reason, n)
	}
}

// guardDeleted reads camhub_hub_consumers_deleted_total{reason}.
func guardDeleted(t *testing.T, h *hub.Server, reason string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return metricValue(mfs, "camhub_hub_consumers_deleted_total", "reason", reason)
}

func metricValue(mfs []*dto.MetricFamily, name, label, value string) float64 {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := label == ""
			for _, l := range m.GetLabel() {
				ok = ok || (l.GetName() == label && l.GetValue() == value)
			}
			if ok {
				if m.Counter != nil {
					return m.Counter.GetValue()
				}
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}

// Finding: a viewer named another user's consumer (seen on the monitoring
// port) and read another camera through it. camhub's consumers now have
// names no one can guess, and a viewer may not list them.
func TestViewerCannotFindAnotherUsersConsumers(t *testing.T) {
	h, pw := secureHub(t, config())
	agent := dial(t, h.ClientURL(), natsconn.Auth{User: "front", PasswordFile: pw["front"]}, quiet())
	publishFrame(t, agent, "front", 1)

	family := dial(t, h.ClientURL(), natsconn.Auth{User: "all", PasswordFile: pw["all"]}, quiet())
	fjs, _ := jetstream.New(family)
	p, err := replay.NewPlayer(fjs, []string{"front"}, time.Now().Add(-time.Minute), 1, func(string, replay.Frame, time.Duration) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-p.Ready():
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("player: %v", err)
	}

	admin := dial(t, h.ClientURL(), natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}, quiet())
	ajs, _ := jetstream.New(admin)
	names := consumerNames(t, ajs)
	if len(names) == 0 {
		t.Fatal("the player has no consumer")
	}
	random := regexp.MustCompile(`^camhub_[0-9a-f]{32}_[0-9]+$`)
	for _, n := range names {
		if !random.MatchString(n) {
			t.Errorf("consumer name %q is not 128 random bits", n)
		}
	}

	// The neighbour cannot list them.
	logs := newLogLines()
	neighbour := dial(t, h.ClientURL(), natsconn.Auth{User: "frontonly", PasswordFile: pw["frontonly"]}, logs.logger())
	for _, api := range []string{"CONSUMER.NAMES", "CONSUMER.LIST"} {
		_, err := neighbour.Request("$JS.API."+api+"."+wire.FramesStream, nil, 2*time.Second)
		if err == nil {
			t.Fatalf("%s answered the neighbour", api)
		}
		logs.wait(t, "Permissions Violation for Publish", api)
	}
	// Nor see them on the monitoring endpoint, which is on loopback by
	// default (cmd/hub) and off in configs/hub-secure.yaml.
}

// Finding: a viewer made durable consumers until the stream took no more.
// The guard deletes durables at once and holds each user to
// hub.MaxUserConsumers.
func TestViewerDurableAndExcessConsumersDeleted(t *testing.T) {
	h, pw := secureHub(t, config())
	agent := dial(t, h.ClientURL(), natsconn.Auth{User: "front", PasswordFile: pw["front"]}, quiet())
	publishFrame(t, agent, "front", 1)
	admin := dial(t, h.ClientURL(), natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}, quiet())
	ajs, _ := jetstream.New(admin)

	neighbour := dial(t, h.ClientURL(), natsconn.Auth{User: "frontonly", PasswordFile: pw["frontonly"]}, quiet())
	njs, _ := jetstream.New(neighbour)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	filter := []string{wire.FramesSubject("front")}
	if _, err := njs.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
		Durable: "squat", FilterSubject: filter[0], AckPolicy: jetstream.AckNonePolicy,
	}); err != nil {
		t.Fatalf("creating a durable (NATS cannot refuse it by permission): %v", err)
	}
	waitDeleted(t, h, ajs, "squat", "durable")

	// A long-lived ephemeral is a durable in disguise.
	if _, err := njs.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
		Name: "forever", FilterSubject: filter[0], AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 24 * time.Hour,
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the long-lived consumer to be deleted", func() bool { return !hasConsumer(t, ajs, "forever") })

	// More than the per-user limit: the excess goes.
	extra := 20
	for i := range hub.MaxUserConsumers + extra {
		if _, err := njs.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
			Name: fmt.Sprintf("flood%d", i), FilterSubject: filter[0], AckPolicy: jetstream.AckNonePolicy,
			InactiveThreshold: time.Minute,
		}); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Fatalf("consumer %d: %v", i, err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the excess consumers to be deleted", func() bool {
		return guardDeleted(t, h, "per_user_limit") >= float64(extra)
	})
	if n := len(consumerNames(t, ajs)); n > hub.MaxUserConsumers {
		t.Fatalf("%d consumers left, the limit is %d", n, hub.MaxUserConsumers)
	}

	// The family still rewinds.
	family := dial(t, h.ClientURL(), natsconn.Auth{User: "all", PasswordFile: pw["all"]}, quiet())
	fjs, _ := jetstream.New(family)
	cons, err := fjs.OrderedConsumer(ctx, wire.FramesStream, jetstream.OrderedConsumerConfig{FilterSubjects: filter})
	if err != nil {
		t.Fatalf("family's rewind: %v", err)
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second)); err != nil {
		t.Fatalf("family's rewind: %v", err)
	}
}

// Finding: a viewer's push consumer delivered JPEGs to every subscriber of
// cams.back.status. Such deliveries carry a reply subject, which camhub's
// live readers refuse, and the guard deletes the consumer.
func TestDeliverSubjectInjection(t *testing.T) {
	h, pw := secureHub(t, config())
	agent := dial(t, h.ClientURL(), natsconn.Auth{User: "front", PasswordFile: pw["front"]}, quiet())
	for i := 1; i <= 20; i++ {
		publishFrame(t, agent, "front", uint64(i))
	}
	admin := dial(t, h.ClientURL(), natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}, quiet())
	ajs, _ := jetstream.New(admin)
	injected, err := admin.SubscribeSync(wire.StatusSubject("back"))
	if err != nil {
		t.Fatal(err)
	}
	admin.Flush()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// What such a consumer delivers carries a reply subject (JetStream's
	// ack subject), so it is told apart from an agent's report. (An admin
	// makes this one: the guard leaves admins alone, and deletes a
	// viewer's before its first delivery, as below.)
	if _, err := ajs.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
		Name: "probe", DeliverSubject: wire.StatusSubject("back"), AckPolicy: jetstream.AckNonePolicy,
	}); err != nil {
		t.Fatalf("creating the push consumer: %v", err)
	}
	m, err := injected.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no injected message arrived: %v", err)
	}
	if !strings.HasPrefix(m.Reply, "$JS.ACK.") {
		t.Fatalf("injected delivery's reply %q, want a JetStream ack subject", m.Reply)
	}
	if wire.CheckLive(m) == nil {
		t.Fatal("wire.CheckLive accepted a JetStream delivery")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	testenv.Eventually(t, 10*time.Second, "the hub to count the injected status messages", func() bool {
		mfs, err := reg.Gather()
		return err == nil && metricValue(mfs, "camhub_hub_status_invalid_total", "", "") > 0
	})
	if err := ajs.DeleteConsumer(ctx, wire.FramesStream, "probe"); err != nil {
		t.Fatal(err)
	}

	family := dial(t, h.ClientURL(), natsconn.Auth{User: "all", PasswordFile: pw["all"]}, quiet())
	fjs, _ := jetstream.New(family)
	if _, err := fjs.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
		Name: "inject", DeliverSubject: wire.StatusSubject("back"), AckPolicy: jetstream.AckNonePolicy,
	}); err != nil {
		t.Fatalf("creating the push consumer: %v", err)
	}
	waitDeleted(t, h, ajs, "inject", "deliver_subject")
	// The hub never took it for camera back.
	for _, id := range h.Online() {
		if id == "back" {
			t.Fatal("the hub lists camera back from injected messages")
		}
	}

	// Into the user's own inbox a push consumer is harmless, and stays.
	if _, err := fjs.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
		Name: "mine", DeliverSubject: wire.InboxPrefix("all") + ".push", AckPolicy: jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	// The guard has seen it once a later refusal is counted.
	if _, err := fjs.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
		Name: "inject2", DeliverSubject: wire.StatusSubject("front"), AckPolicy: jetstream.AckNonePolicy,
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the second push consumer to be deleted", func() bool { return guardDeleted(t, h, "deliver_subject") == 2 })
	if !hasConsumer(t, ajs, "mine") {
		t.Fatal("a push consumer into the user's own inbox was deleted")
	}
}

// Finding: the agent role could publish anything under cams.<id>.>.
func TestAgentPublishesOnlyFramesAndStatus(t *testing.T) {
	h, pw := secureHub(t, config())
	admin := dial(t, h.ClientURL(), natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}, quiet())
	other, err := admin.SubscribeSync("cams.front.>")
	if err != nil {
		t.Fatal(err)
	}
	admin.Flush()
	logs := newLogLines()
	agent := dial(t, h.ClientURL(), natsconn.Auth{User: "front", PasswordFile: pw["front"]}, logs.logger())
	for _, subj := range []string{"cams.front.commands", "cams.front.frames.x"} {
		if err := agent.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
		logs.wait(t, "Permissions Violation for Publish", subj)
	}
	publishFrame(t, agent, "front", 1)
	if err := agent.Publish(wire.StatusSubject("front"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	agent.Flush()
	for _, want := range []string{wire.FramesSubject("front"), wire.StatusSubject("front")} {
		m, err := other.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != want {
			t.Fatalf("got %s, want %s (the refused subjects came through)", m.Subject, want)
		}
	}
}

// A viewer of front lists front's events and reads its clips, and gets
// nothing of back's, by either route: NATS permissions decide.
func TestViewerReadsOnlyItsCamerasEvents(t *testing.T) {
	h, pw := secureHub(t, config())
	admin := dial(t, h.ClientURL(), natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}, quiet())
	ajs, _ := jetstream.New(admin)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now().Add(-time.Minute)
	eids := map[string]string{}
	for _, id := range []string{"front", "back"} {
		eid := wire.EventID(id, start)
		eids[id] = eid
		ev, _ := json.Marshal(wire.Event{ID: eid, Camera: id, Start: start, End: start.Add(10 * time.Second)})
		if _, err := ajs.Publish(ctx, wire.EventsSubject(id), ev); err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= 3; seq++ {
			m := nats.NewMsg(wire.ClipSubject(eid, wire.FramesSubject(id)))
			m.Header = wire.Frame{Seq: seq, Time: start.Add(time.Duration(seq) * time.Second), Width: 8, Height: 8}.Header()
			m.Data = []byte{0xff, 0xd8, 0xff, 0xd9}
			if _, err := ajs.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}

	neighbour := dial(t, h.ClientURL(), natsconn.Auth{User: "frontonly", PasswordFile: pw["frontonly"]}, quiet())
	njs, _ := jetstream.New(neighbour)
	evs, _, err := replay.Events(ctx, njs, "front", start.Add(-time.Hour))
	if err != nil || len(evs) != 1 || evs[0].ID != eids["front"] {
		t.Fatalf("front's events: %v, %v; want its one event", evs, err)
	}
	n := 0
	if err := replay.ReadClip(ctx, njs, eids["front"], false, func(jetstream.Msg, wire.Frame) error { n++; return nil }); err != nil || n != 3 {
		t.Fatalf("front's clip: %d frames, %v; want 3", n, err)
	}

	if evs, _, err := replay.Events(ctx, njs, "back", start.Add(-time.Hour)); err == nil || len(evs) != 0 {
		t.Errorf("back's events: %v, %v; want refused", evs, err)
	}
	if evs, _, err := replay.Events(ctx, njs, "", start.Add(-time.Hour)); err == nil || len(evs) != 0 {
		t.Errorf("every camera's events: %v, %v; want refused", evs, err)
	}
	n = 0
	if err := replay.ReadClip(ctx, njs, eids["back"], false, func(jetstream.Msg, wire.Frame) error { n++; return nil }); err == nil || n != 0 {
		t.Errorf("back's clip: %d frames, %v; want refused", n, err)
	}
	// Nor live: back's motion and events are not the neighbour's to hear.
	logs := newLogLines()
	live := dial(t, h.ClientURL(), natsconn.Auth{User: "frontonly", PasswordFile: pw["frontonly"]}, logs.logger())
	for _, subj := range []string{wire.MotionSubject("back"), wire.EventsSubject("back")} {
		if _, err := live.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		logs.wait(t, "Permissions Violation for Subscription", subj)
	}
}
