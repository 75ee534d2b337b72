package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"camhub/hub"
	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/wire"
	"camhub/notify"
)

// request is what a stand-in HTTP server received.
type request struct {
	at     time.Time
	method string
	path   string
	header http.Header
	body   []byte
}

// recorder is an HTTP server that records every request and answers with
// what answer says (200 if nil).
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	answer func(n int, r *http.Request) int
}

func newRecorder(t *testing.T, answer func(n int, r *http.Request) int) *recorder {
	rec := &recorder{answer: answer}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		n := len(rec.reqs)
		rec.reqs = append(rec.reqs, request{time.Now(), r.Method, r.URL.Path, r.Header.Clone(), body})
		rec.mu.Unlock()
		code := http.StatusOK
		if rec.answer != nil {
			code = rec.answer(n, r)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) got() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// event is camera cam's event starting at start; ended gives it an end and
// a clip.
func event(cam string, start time.Time, ended bool) wire.Event {
	eid := wire.EventID(cam, start)
	ev := wire.Event{ID: eid, Camera: cam, Start: start, Score: 0.05, Boxes: []wire.Box{{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}},
		Source: "motion", Frames: 3,
		Clip: wire.Clip{Stream: wire.ClipsStream, Subject: wire.ClipFilter(eid, cam), From: start.Add(-5 * time.Second), Codec: wire.CodecJPEG}}
	if ended {
		ev.End = start.Add(12 * time.Second)
		ev.Clip.To, ev.Clip.Frames, ev.Clip.Bytes = ev.End.Add(5*time.Second), 220, 9<<20
	}
	return ev
}

// store stores ev in EVENTS as the detector does.
func store(t *testing.T, js jetstream.JetStream, ev wire.Event) {
	t.Helper()
	b, _ := json.Marshal(ev)
	kind := "start"
	if !ev.Open() {
		kind = "end"
	}
	m := &nats.Msg{Subject: wire.EventsSubject(ev.Camera), Data: b, Header: nats.Header{}}
	m.Header.Set(wire.HeaderMsgID, ev.ID+"."+kind)
	if _, err := js.PublishMsg(testenv.Context(t, 5*time.Second), m); err != nil {
		t.Fatal(err)
	}
}

// settings are quick settings for tests.
func settings() notify.Settings {
	s := notify.DefaultSettings()
	s.Timeout, s.Backoff, s.ThumbWait = 2*time.Second, 100*time.Millisecond, 500*time.Millisecond
	return s
}

func start(t *testing.T, nc *nats.Conn, cfg notify.Config) *notify.Notifier {
	t.Helper()
	n, err := notify.New(nc, cfg, testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func writeFile(t *testing.T, name, text string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A webhook gets each event's start and end as JSON with the headers of
// its secret file; a restarted hub notifies nothing twice, and an event
// stored while it was down and is recent still.
func TestWebhookOncePerEventAcrossRestart(t *testing.T) {
	rec := newRecorder(t, nil)
	other := newRecorder(t, nil)
	headers := writeFile(t, "hook-headers", "# the hook's secret\nAuthorization: Bearer s3cret-hook\nX-Extra: 1\n")
	end := true
	cfg := notify.Config{Settings: settings(), Targets: notify.Targets{Webhooks: []notify.Webhook{
		{URL: rec.URL + "/hook", HeaderFile: headers, End: &end},
		{URL: other.URL + "/back-only", Cams: []string{"back"}},
	}}}
	hcfg := hubtest.Config()
	hcfg.StoreDir = t.TempDir() // events on file storage survive the restart
	h, js := hubtest.StartJS(t, &hcfg)
	start(t, testenv.Conn(t, h.ClientURL()), cfg)

	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	ev := event("front", t0, false)
	store(t, js, ev)
	testenv.Eventually(t, 10*time.Second, "the start notification", func() bool { return len(rec.got()) == 1 })
	ended := event("front", t0, true)
	store(t, js, ended)
	testenv.Eventually(t, 10*time.Second, "the end notification", func() bool { return len(rec.got()) == 2 })

	for i, want := range []struct {
		kind string
		ev   wire.Event
	}{{notify.NotifyStart, ev}, {notify.NotifyEnd, ended}} {
		r := rec.got()[i]
		if r.method != http.MethodPost || r.path != "/hook" || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %d: %s %s %v", i, r.method, r.path, r.header)
		}
		if r.header.Get("Authorization") != "Bearer s3cret-hook" || r.header.Get("X-Extra") != "1" {
			t.Fatalf("request %d: headers of the secret file missing: %v", i, r.header)
		}
		if r.header.Get(notify.HeaderEvent) != ev.ID+"."+want.kind {
			t.Fatalf("request %d: %s %q", i, notify.HeaderEvent, r.header.Get(notify.HeaderEvent))
		}
		var body notify.WebhookBody
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("request %d: %v: %s", i, err, r.body)
		}
		if body.Notification != want.kind || body.ID != ev.ID || body.Camera != "front" || !body.Start.Equal(ev.Start) ||
			!body.End.Equal(want.ev.End) || body.Clip.Frames != want.ev.Clip.Frames || len(body.Boxes) != 1 {
			t.Fatalf("request %d: body %s", i, r.body)
		}
		// the body is the event document, which ParseEvent reads
		if _, err := wire.ParseEvent(wire.EventsSubject("front"), r.body); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}

	// The same hub again, on its store: nothing is notified twice ...
	h.Close()
	h2, err := hub.Start(context.Background(), hcfg, testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h2.Close)
	js2 := hubtest.JetStream(t, h2.ClientURL())
	// ... an event stored while no notifier ran is, being recent ...
	back := event("back", t0.Add(time.Second), false)
	store(t, js2, back)
	n2 := start(t, testenv.Conn(t, h2.ClientURL()), cfg)
	// ... and so is a new one, after it.
	later := event("front", t0.Add(2*time.Second), false)
	store(t, js2, later)
	testenv.Eventually(t, 10*time.Second, "the notifications after the restart", func() bool {
		return len(rec.got()) >= 4 && len(other.got()) >= 1
	})
	got := rec.got()
	if len(got) != 4 || got[2].header.Get(notify.HeaderEvent) != back.ID+".start" || got[3].header.Get(notify.HeaderEvent) != later.ID+".start" {
		for _, r := range got {
			t.Logf("%s", r.header.Get(notify.HeaderEvent))
		}
		t.Fatalf("%d notifications after the restart, want 4: the 2 before, then %s and %s", len(got), back.ID, later.ID)
	}
	if o := other.got(); len(o) != 1 || o[0].header.Get(notify.HeaderEvent) != back.ID+".start" {
		t.Fatalf("the back-only webhook got %d notifications, want the back camera's start only", len(o))
	}
	if s := n2.Stats(); s.Events != 2 || s.Stale != 0 || s.Bad != 0 {
		t.Fatalf("after the restart: %+v", s)
	}
}

// An event older than MaxAge when read (the hub was down for long) is not
// notified; a document that is not an event is counted as bad.
func TestStaleAndBadEvents(t *testing.T) {
	rec := newRecorder(t, nil)
	h, js := hubtest.StartJS(t, nil)
	s := settings()
	s.MaxAge = time.Second
	cfg := notify.Config{Settings: s, Targets: notify.Targets{Webhooks: []notify.Webhook{{URL: rec.URL}}}}
	nc := testenv.Conn(t, h.ClientURL())
	start(t, nc, cfg).Close() // the consumer now exists, and waits
	old := event("front", time.Now(), false)
	store(t, js, old)
	stored := time.Now()
	testenv.Eventually(t, 5*time.Second, "the event to be older than max-age", func() bool { return time.Since(stored) > s.MaxAge })
	n := start(t, nc, cfg)
	m := &nats.Msg{Subject: wire.EventsSubject("front"), Data: []byte(`{"id":"x","camera":"other"}`)}
	if _, err := js.PublishMsg(testenv.Context(t, 5*time.Second), m); err != nil {
		t.Fatal(err)
	}
	fresh := event("front", time.Now().Add(time.Second), false)
	store(t, js, fresh)
	testenv.Eventually(t, 10*time.Second, "the fresh event", func() bool { return len(rec.got()) == 1 })
	if st := n.Stats(); st.Bad != 1 || st.Events != 2 || st.Stale != 1 {
		t.Fatalf("%+v", st)
	}
	if r := rec.got()[0]; r.header.Get(notify.HeaderEvent) != fresh.ID+".start" {
		t.Fatalf("notified %s, want only %s", r.header.Get(notify.HeaderEvent), fresh.ID)
	}
}

// A failing webhook (500s, then well again) is tried again with growing
// waits, while another target and the publishing of events go on at once;
// a hanging one is cut off by the timeout, and its full queue drops the
// oldest, counted. The counters show on /metrics.
func TestWebhookRetriesDoNotBlock(t *testing.T) {
	const failures = 3
	failing := newRecorder(t, func(n int, _ *http.Request) int {
		if n < failures {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	healthy := newRecorder(t, nil)
	release := make(chan struct{})
	hanging := newRecorder(t, func(_ int, r *http.Request) int {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) })
	refused := newRecorder(t, func(int, *http.Request) int { return http.StatusForbidden })

	s := settings()
	s.Backoff, s.Retries, s.Queue, s.Timeout = 200*time.Millisecond, 4, 2, 300*time.Millisecond
	h, js := hubtest.StartJS(t, nil)
	n := start(t, testenv.Conn(t, h.ClientURL()), notify.Config{Settings: s, Targets: notify.Targets{Webhooks: []notify.Webhook{
		{URL: failing.URL, Cams: []string{"front"}},
		{URL: healthy.URL},
		{URL: hanging.URL, Cams: []string{"hang"}},
		{URL: refused.URL, Cams: []string{"refused"}},
	}}})

	store(t, js, event("front", time.Now(), false))
	testenv.Eventually(t, 10*time.Second, "the failing webhook to succeed", func() bool { return len(failing.got()) == failures+1 })
	f, ok := failing.got(), healthy.got()
	if len(ok) != 1 || !ok[0].at.Before(f[1].at) {
		t.Fatalf("the healthy webhook got %d notifications, want 1 before the failing one's second try", len(ok))
	}
	// waits of 200, 400 and 800 ms between the tries
	for i := 1; i < len(f); i++ {
		gap, want := f[i].at.Sub(f[i-1].at), s.Backoff<<(i-1)
		if gap < want {
			t.Fatalf("try %d came %v after the one before, want at least %v", i+1, gap, want)
		}
	}

	// A hanging endpoint: each try ends at the timeout; the queue of 2
	// keeps the newest, and publishing never waits for any of it.
	var worst time.Duration
	for i := range 6 {
		t0 := time.Now()
		store(t, js, event("hang", time.Now().Add(time.Duration(i)*time.Millisecond), false))
		worst = max(worst, time.Since(t0))
	}
	store(t, js, event("refused", time.Now(), false))
	testenv.Eventually(t, 10*time.Second, "the refused notification", func() bool { return n.TargetStats()[3].Failed == 1 })
	testenv.Eventually(t, 10*time.Second, "drops from the hanging webhook's full queue", func() bool {
		return n.TargetStats()[2].Dropped >= 3
	})
	if worst > time.Second {
		t.Fatalf("storing an event took %v while a webhook hung", worst)
	}
	st := n.TargetStats()
	if st[0].Sent != 1 || st[0].Retries != failures || st[0].Failed != 0 {
		t.Fatalf("failing webhook: %+v", st[0])
	}
	// the healthy webhook has the same queue of 2: every event sent or
	// dropped, none lost without a count
	testenv.Eventually(t, 10*time.Second, "every event at the healthy webhook", func() bool {
		st := n.TargetStats()[1]
		return st.Sent+st.Dropped == 1+6+1 && int(st.Sent) == len(healthy.got())
	})
	if st[3].Failed != 1 || st[3].Retries != 0 || len(refused.got()) != 1 {
		t.Fatalf("a 403 is not tried again: %+v", st[3])
	}

	// on the hub's /metrics, as cmd/hub wires it
	h.AddCollector(n.Collector())
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, name := range []string{"camhub_hub_nats_connected", "camhub_notify_sent_total", "camhub_notify_failed_total", "camhub_notify_dropped_total", "camhub_notify_retries_total", "camhub_notify_events_total"} {
		if !seen[name] {
			t.Fatalf("metric %s missing (have %v)", name, seen)
		}
	}
}

// ntfyServer is a stand-in for an ntfy server: it takes a message on a
// topic as ntfy does (a POST of the text, or a PUT of an attachment with
// the text in headers), refuses a wrong token, and keeps what it got.
func ntfyServer(t *testing.T, token string) *recorder {
	return newRecorder(t, func(_ int, r *http.Request) int {
		if r.Header.Get("Authorization") != "Bearer "+token {
			return http.StatusUnauthorized
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut || strings.Count(r.URL.Path, "/") != 1 {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
}

// ntfy gets each event with its picture attached: the event's thumbnail
// from CLIPS (stored before or just after the event), else the camera's
// newest frame, else the text alone; the token comes from its file.
func TestNtfy(t *testing.T) {
	const token = "tk_ntfy-secret"
	srv := ntfyServer(t, token)
	tokenFile := writeFile(t, "ntfy-token", token+"\n")
	h, js := hubtest.StartJS(t, nil)
	n := start(t, testenv.Conn(t, h.ClientURL()), notify.Config{Settings: settings(), Targets: notify.Targets{
		Ntfy: []notify.Ntfy{{URL: srv.URL + "/garden-cam", TokenFile: tokenFile, Priority: 4}},
	}})
	ctx := testenv.Context(t, 30*time.Second)
	thumbA, thumbB, frame := testenv.Picture(t, 1, 640, 360, 0), testenv.Picture(t, 2, 640, 360, 0), testenv.Picture(t, 3, 320, 240, 0)
	storeThumb := func(ev wire.Event, pic []byte) {
		m := &nats.Msg{Subject: wire.ThumbSubject(ev.ID, ev.Camera), Data: pic, Header: nats.Header{}}
		m.Header.Set(wire.HeaderMsgID, ev.ID+".thumb")
		m.Header.Set(wire.HeaderContentType, wire.ContentTypeJPEG)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	// 1: the thumbnail is stored before the event
	t0 := time.Now()
	a := event("garden", t0, false)
	storeThumb(a, thumbA)
	store(t, js, a)
	// 2: just after it (the notifier waits for it)
	b := event("garden", t0.Add(time.Second), false)
	store(t, js, b)
	storeThumb(b, thumbB)
	// 3: no thumbnail: the camera's newest frame
	if _, err := js.PublishMsg(ctx, testenv.FrameMsg("door", 1, t0, frame, 320, 240)); err != nil {
		t.Fatal(err)
	}
	c := event("door", t0, false)
	store(t, js, c)
	// 4: no picture at all (an H.264 camera without a thumbnail)
	d := event("shed", t0, false)
	store(t, js, d)

	testenv.Eventually(t, 20*time.Second, "4 ntfy messages", func() bool { return len(srv.got()) == 4 })
	for i, want := range []struct {
		ev  wire.Event
		pic []byte
	}{{a, thumbA}, {b, thumbB}, {c, frame}, {d, nil}} {
		r := srv.got()[i]
		if r.path != "/garden-cam" || r.header.Get("Authorization") != "Bearer "+token || r.header.Get("Priority") != "4" ||
			r.header.Get("Title") != "Motion: "+want.ev.Camera || r.header.Get("Tags") != "rotating_light,"+want.ev.Camera {
			t.Fatalf("message %d: %s %s %v", i, r.method, r.path, r.header)
		}
		if want.pic == nil {
			if r.method != http.MethodPost || !strings.Contains(string(r.body), want.ev.ID) || r.header.Get("Filename") != "" {
				t.Fatalf("message %d: want a POST of the text alone, got %s %q", i, r.method, r.body)
			}
			continue
		}
		if r.method != http.MethodPut || !bytes.Equal(r.body, want.pic) || !wire.LooksLikeJPEG(r.body) ||
			r.header.Get("Filename") != want.ev.ID+".jpg" || !strings.Contains(r.header.Get("Message"), want.ev.ID) {
			t.Fatalf("message %d (%s): want a PUT of its picture, got %s of %d bytes, Filename %q, Message %q",
				i, want.ev.ID, r.method, len(r.body), r.header.Get("Filename"), r.header.Get("Message"))
		}
	}
	if st := n.TargetStats()[0]; st.Sent != 4 || st.Failed != 0 {
		t.Fatalf("%+v", st)
	}
}

// A wrong token is refused by ntfy (401): counted as failed, not tried
// again; a missing token file stops New.
func TestNtfyWrongToken(t *testing.T) {
	srv := ntfyServer(t, "right")
	h, js := hubtest.StartJS(t, nil)
	nc := testenv.Conn(t, h.ClientURL())
	if _, err := notify.New(nc, notify.Config{Settings: settings(), Targets: notify.Targets{
		Ntfy: []notify.Ntfy{{URL: srv.URL + "/t", TokenFile: filepath.Join(t.TempDir(), "missing")}},
	}}, testenv.Quiet()); err == nil {
		t.Fatal("a missing token file was accepted")
	}
	t.Setenv("CAMHUB_TEST_NTFY_TOKEN", "wrong")
	n := start(t, nc, notify.Config{Settings: settings(), Targets: notify.Targets{
		Ntfy: []notify.Ntfy{{URL: srv.URL + "/t", TokenEnv: "CAMHUB_TEST_NTFY_TOKEN"}},
	}})
	store(t, js, event("front", time.Now(), false))
	testenv.Eventually(t, 10*time.Second, "the refusal", func() bool { return n.TargetStats()[0].Failed == 1 })
	if got := srv.got(); len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
}
