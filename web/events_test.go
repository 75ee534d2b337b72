package web

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/natsconn"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// clipInterval is the capture interval of the stored clips' frames.
const clipInterval = 100 * time.Millisecond

// storedEvent is an event stored in EVENTS and CLIPS as the motion
// detector stores one (docs/PROTOCOL.md): its documents, its clip's
// frames or access units with their headers and message ids, and its
// thumbnail.
type storedEvent struct {
	ev     wire.Event
	frames [][]byte // the clip's payloads, in order
	thumb  []byte
}

// storeEvent stores an event of camera cam starting at start, with a clip
// of n frames (H.264 access units if video) from a second before it; an
// ended one has its end document too.
func storeEvent(t testing.TB, nc *nats.Conn, cam string, start time.Time, video bool, n int, ended bool) storedEvent {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 30*time.Second)
	eid := wire.EventID(cam, start)
	from := start.Add(-time.Second)
	codec := wire.CodecJPEG
	var payloads [][]byte
	if video {
		codec = wire.CodecH264
		payloads = testenv.H264Clip(t, 320, 240, n, 10)
	} else {
		for i := range n {
			payloads = append(payloads, testenv.Picture(t, i, 320, 240, 0))
		}
	}
	se := storedEvent{frames: payloads, thumb: testenv.Picture(t, 99, 320, 240, 0)}
	se.ev = wire.Event{ID: eid, Camera: cam, Start: start, Score: 0.042, Boxes: []wire.Box{{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}},
		Source: "motion", Frames: n / 2,
		Clip: wire.Clip{Stream: wire.ClipsStream, Subject: wire.ClipFilter(eid, cam), From: from, Codec: codec}}
	publish := func(m *nats.Msg) {
		t.Helper()
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("storing %s: %v", m.Subject, err)
		}
	}
	doc := func(e wire.Event, id string) {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		m := &nats.Msg{Subject: wire.EventsSubject(cam), Data: b, Header: nats.Header{}}
		m.Header.Set(wire.HeaderMsgID, id)
		publish(m)
	}
	doc(se.ev, eid+".start")
	thumb := &nats.Msg{Subject: wire.ThumbSubject(eid, cam), Data: se.thumb, Header: nats.Header{}}
	thumb.Header.Set(wire.HeaderMsgID, wire.ThumbMsgID(eid))
	thumb.Header.Set(wire.HeaderContentType, wire.ContentTypeJPEG)
	publish(thumb)
	for i, p := range payloads {
		at := from.Add(time.Duration(i) * clipInterval)
		var m *nats.Msg
		if video {
			m = testenv.VideoMsg(t, cam, uint64(i+1), at, p, 320, 240)
		} else {
			m = testenv.FrameMsg(cam, uint64(i+1), at, p, 320, 240)
		}
		kind := wire.KindFrames
		if _, key, err := wire.ParseVideoSubject(m.Subject); err == nil {
			kind = map[bool]string{true: wire.VideoKey, false: wire.VideoDelta}[key]
		}
		m.Subject = wire.ClipSubject(eid, m.Subject)
		m.Header.Set(wire.HeaderMsgID, eid+"."+kind+"."+strconv.FormatInt(at.UnixNano(), 10)+"."+strconv.Itoa(i+1))
		m.Header.Set(wire.HeaderClipSource, strconv.Itoa(i+1))
		publish(m)
		if i == 0 {
			se.ev.Clip.First = at
		}
		se.ev.Clip.Last = at
		se.ev.Clip.Frames++
		se.ev.Clip.Bytes += int64(len(p))
	}
	if ended {
		se.ev.End = se.ev.Clip.Last.Add(-time.Second)
		se.ev.Clip.To = se.ev.Clip.Last
		doc(se.ev, eid+".end")
	} else {
		se.ev.Clip = wire.Clip{Stream: wire.ClipsStream, Subject: wire.ClipFilter(eid, cam), From: from, Codec: codec}
	}
	return se
}

// getEvents gets /api/events with query q, as user (none: no login).
func getEvents(t *testing.T, c *http.Client, base, q, user string) (int, []Event, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/events"+q, nil)
	if user != "" {
		req.SetBasicAuth(user, "pw-"+user)
	}
	a := do(t, c, req)
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("/api/events%s: %d %s", q, a.status, ct)
	}
	var evs []Event
	if a.status == http.StatusOK {
		if err := json.Unmarshal(a.body, &evs); err != nil {
			t.Fatalf("/api/events%s: %v: %s", q, err, a.body)
		}
	}
	return a.status, evs, a.body
}

func ids(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.ID)
	}
	return strings.Join(s, ",")
}

// GET /api/events lists the events newest first with their documents and
// URLs, by camera, time and number; the thumbnail is the stored JPEG; a
// JPEG camera's clip is MJPEG at its capture pace, an H.264 camera's a
// fragmented MP4 that ffprobe reads every frame of.
func TestEventsAPI(t *testing.T) {
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{}, nc)
	front, back := newCamera(t, nc, "front", 64, 48, 2, 0), newCamera(t, nc, "back", 64, 48, 2, 0)
	front.report(wire.StateStreaming)
	back.report(wire.StateStreaming)
	testenv.Eventually(t, 10*time.Second, "the cameras known", func() bool { return s.known("front") && s.known("back") })
	now := time.Now().Truncate(time.Millisecond)
	old := storeEvent(t, nc, "front", now.Add(-3*time.Hour), false, 30, true)
	jpg := storeEvent(t, nc, "front", now.Add(-time.Hour), false, 30, true)
	h264 := storeEvent(t, nc, "back", now.Add(-30*time.Minute), true, 40, true)
	open := storeEvent(t, nc, "front", now.Add(-time.Minute), false, 5, false)
	c := ts.Client()

	status, evs, body := getEvents(t, c, ts.URL, "", "")
	if status != http.StatusOK || ids(evs) != strings.Join([]string{open.ev.ID, h264.ev.ID, jpg.ev.ID, old.ev.ID}, ",") {
		t.Fatalf("/api/events: %d %s", status, body)
	}
	var raw []map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "camera", "start", "end", "score", "boxes", "clip", "frames", "source", "thumb_url", "clip_url", "clip_type"} {
		if _, ok := raw[1][k]; !ok {
			t.Errorf("an event has no %q: %v", k, raw[1])
		}
	}
	if _, ok := raw[0]["end"]; ok {
		t.Errorf("the open event has an end: %v", raw[0])
	}
	if e := evs[1]; e.ThumbURL != "/api/events/"+h264.ev.ID+"/thumb.jpg" || e.ClipURL != "/api/events/"+h264.ev.ID+"/clip" ||
		e.ClipType != ClipMP4Type || evs[2].ClipType != ClipMJPEGType || !e.End.Equal(h264.ev.End) || e.Clip.Frames != 40 || e.Score != 0.042 {
		t.Errorf("the H.264 event: %+v", e)
	}
	for _, tc := range []struct{ q, want string }{
		{"?cam=back", h264.ev.ID},
		{"?cam=front&since=2h", open.ev.ID + "," + jpg.ev.ID},
		{"?since=" + url.QueryEscape(now.Add(-45*time.Minute).Format(time.RFC3339)), open.ev.ID + "," + h264.ev.ID},
		{"?limit=2", open.ev.ID + "," + h264.ev.ID},
		{"?since=1m30s&limit=1000&unknown=1", open.ev.ID},
	} {
		if status, evs, body := getEvents(t, c, ts.URL, tc.q, ""); status != http.StatusOK || ids(evs) != tc.want {
			t.Errorf("/api/events%s: %d %s, want %s", tc.q, status, body, tc.want)
		}
	}
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"?since=yesterday", http.StatusBadRequest},
		{"?since=-1h", http.StatusBadRequest},
		{"?limit=0", http.StatusBadRequest},
		{"?limit=1001", http.StatusBadRequest},
		{"?cam=no.such", http.StatusBadRequest},
		{"?cam=nosuch", http.StatusNotFound},
	} {
		if status, _, body := getEvents(t, c, ts.URL, tc.q, ""); status != tc.want || !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("/api/events%s: %d %s, want %d", tc.q, status, body, tc.want)
		}
	}

	// the thumbnail
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		res, err := c.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	res, b := get(evs[2].ThumbURL)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != wire.ContentTypeJPEG || !bytes.Equal(b, jpg.thumb) {
		t.Fatalf("thumbnail: %d %s, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(b))
	}
	for _, p := range []string{
		"/api/events/nosuch/thumb.jpg", "/api/events/nosuch/clip",
		"/api/events/" + wire.EventID("front", now.Add(-5*time.Hour)) + "/thumb.jpg",
		"/api/events/" + wire.EventID("front", now.Add(-5*time.Hour)) + "/clip",
	} {
		if res, b := get(p); res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s", p, res.StatusCode, b)
		}
	}

	// HEAD says the type at once
	for _, e := range evs[1:3] {
		res, err := c.Head(ts.URL + e.ClipURL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != e.ClipType {
			t.Errorf("HEAD %s: %d %s, want %s", e.ClipURL, res.StatusCode, res.Header.Get("Content-Type"), e.ClipType)
		}
	}

	// the JPEG clip: every frame, at the pace they were captured
	start := time.Now()
	res, err := c.Get(ts.URL + evs[2].ClipURL)
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if res.StatusCode != http.StatusOK || err != nil || mt != "multipart/x-mixed-replace" {
		t.Fatalf("JPEG clip: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(res.Body, params["boundary"])
	n := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("JPEG clip, part %d: %v", n, err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if n < len(jpg.frames) && !bytes.Equal(data, jpg.frames[n]) {
			t.Errorf("JPEG clip, part %d: not the clip's frame", n)
		}
		if p.Header.Get(wire.HeaderSeq) != strconv.Itoa(n+1) {
			t.Errorf("JPEG clip, part %d: Frame-Seq %q", n, p.Header.Get(wire.HeaderSeq))
		}
		n++
	}
	res.Body.Close()
	if took := time.Since(start); n != 30 || took < 29*clipInterval*9/10 {
		t.Errorf("JPEG clip: %d frames in %v, want 30 in %v", n, took, 29*clipInterval)
	}

	// the H.264 clip: a fragmented MP4 with every access unit
	res, b = get(evs[1].ClipURL)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != ClipMP4Type || len(b) < 8 || string(b[4:8]) != "ftyp" {
		t.Fatalf("H.264 clip: %d %s %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(b))
	}
	if frames := probeFrames(t, b); frames != 40 {
		t.Errorf("ffprobe counts %d frames in the H.264 clip, want 40", frames)
	}
	testenv.Eventually(t, 10*time.Second, "the clips' replays to end", func() bool { return s.replays.Load() == 0 })
}

// probeFrames counts the video frames ffprobe decodes in an MP4 file.
func probeFrames(t *testing.T, mp4 []byte) int {
	t.Helper()
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatalf("no ffprobe (scripts/deps.sh test, or apt-get install ffmpeg): %v", err)
	}
	f := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(f, mp4, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ffprobe said %q", out)
	}
	return n
}

// A user limited to front sees front's events alone: back's are not
// listed, and its thumbnail and clip are answered as those of an event
// that does not exist; the hub refuses front's user's own connection
// back's clips too. A user of every camera sees both.
func TestEventsPerUser(t *testing.T) {
	e := startLoginWeb(t, Login{FreeAttempts: 1000})
	now := time.Now().Truncate(time.Millisecond)
	admin := e.front.nc // the admin's
	fe := storeEvent(t, admin, "front", now.Add(-2*time.Minute), false, 5, true)
	be := storeEvent(t, admin, "back", now.Add(-time.Minute), false, 5, true)
	c := noRedirects(e.ts)

	for _, tc := range []struct{ user, q, want string }{
		{"frontonly", "", fe.ev.ID},
		{"frontonly", "?cam=front", fe.ev.ID},
		{"viewer", "", be.ev.ID + "," + fe.ev.ID},
		{"admin", "?cam=back", be.ev.ID},
	} {
		if status, evs, body := getEvents(t, c, e.ts.URL, tc.q, tc.user); status != http.StatusOK || ids(evs) != tc.want {
			t.Errorf("%s: /api/events%s: %d %s, want %s", tc.user, tc.q, status, body, tc.want)
		}
	}
	// back's events for front's user: as if there were none
	status, _, body := getEvents(t, c, e.ts.URL, "?cam=back", "frontonly")
	nstatus, _, nbody := getEvents(t, c, e.ts.URL, "?cam=nosuch", "frontonly")
	if status != http.StatusNotFound || nstatus != status || !bytes.Equal(bytes.ReplaceAll(nbody, []byte("nosuch"), []byte("back")), body) {
		t.Errorf("frontonly, back's events: %d %s; a camera that does not exist: %d %s", status, body, nstatus, nbody)
	}
	get := func(user, path string) answer {
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
		req.SetBasicAuth(user, "pw-"+user)
		return do(t, c, req)
	}
	none := wire.EventID("back", now.Add(-time.Hour))
	for _, kind := range []string{"thumb.jpg", "clip"} {
		a := get("frontonly", "/api/events/"+be.ev.ID+"/"+kind)
		n := get("frontonly", "/api/events/"+wire.EventID("nosuch", now)+"/"+kind)
		if a.status != http.StatusNotFound || bytes.Contains(a.body, []byte("thumbnail")) || bytes.Contains(a.body, []byte("clip")) ||
			n.status != a.status || !bytes.Equal(bytes.ReplaceAll(n.body, []byte(wire.EventID("nosuch", now)), []byte(be.ev.ID)), a.body) {
			t.Errorf("frontonly, back's %s: %d %s; of a camera that does not exist: %d %s", kind, a.status, a.body, n.status, n.body)
		}
		if a := get("frontonly", "/api/events/"+fe.ev.ID+"/"+kind); a.status != http.StatusOK {
			t.Errorf("frontonly, front's %s: %d %s", kind, a.status, a.body)
		}
		if a := get("viewer", "/api/events/"+be.ev.ID+"/"+kind); a.status != http.StatusOK {
			t.Errorf("viewer, back's %s: %d %s", kind, a.status, a.body)
		}
		if a := get("viewer", "/api/events/"+none+"/"+kind); a.status != http.StatusNotFound {
			t.Errorf("viewer, an event that does not exist, %s: %d %s", kind, a.status, a.body)
		}
	}
	// the hub decides too: front's user's own connection may not read
	// back's clip
	id, err := e.s.identifyBasic(t, "frontonly")
	if err != nil {
		t.Fatal(err)
	}
	_, err = id.acc.js.OrderedConsumer(testenv.Context(t, 5*time.Second), wire.ClipsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.ThumbSubject(be.ev.ID, "back")}})
	if err == nil {
		t.Error("front's user's connection may read back's clips")
	}
	if a := get("frontonly", "/api/events/"+fe.ev.ID+"/thumb.jpg"); !bytes.Equal(a.body, fe.thumb) {
		t.Errorf("front's thumbnail for frontonly: %d, %d bytes", a.status, len(a.body))
	}
}

// GET /api/events' query comes from outside: its parser never panics, and
// what it accepts is in bounds.
func FuzzEventsQuery(f *testing.F) {
	for _, s := range []string{"", "cam=front", "since=24h&limit=100", "since=2026-12-01T06:00:00Z", "since=2026-12-01T06:00:00%2B01:00",
		"since=-1h", "limit=0", "limit=1001", "limit=x", "cam=a.b", "cam=&since=&limit=", "%zz", "since=1e9h", "cam=front&cam=back"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseEventsQuery(raw, now)
		if err != nil {
			return
		}
		if q.Limit < 1 || q.Limit > MaxEventsLimit || (q.Cam != "" && wire.ValidateID(q.Cam) != nil) {
			t.Fatalf("%q: accepted %+v", raw, q)
		}
	})
}

// Events the hub refuses to give the web viewer (its own user may read
// front's alone, and there are no logins) are answered 503 with a JSON
// error, not an empty list or a broken picture; front's are there.
func TestEventsRefusedByHubIs503(t *testing.T) {
	h, pw := securedHub(t)
	admin, err := natsconn.Dial(h.ClientURL(), natsconn.DialOptions{Auth: natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	now := time.Now().Truncate(time.Millisecond)
	fe := storeEvent(t, admin, "front", now.Add(-2*time.Minute), false, 3, true)
	be := storeEvent(t, admin, "back", now.Add(-time.Minute), false, 3, true)
	nc, err := natsconn.Dial(h.ClientURL(), natsconn.DialOptions{Auth: natsconn.Auth{User: "frontonly", PasswordFile: pw["frontonly"]}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	_, ts := startWeb(t, Config{}, nc)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/api/events", http.StatusServiceUnavailable}, // every camera's: refused
		{"/api/events/" + be.ev.ID + "/thumb.jpg", http.StatusServiceUnavailable},
		{"/api/events/" + be.ev.ID + "/clip", http.StatusServiceUnavailable},
		{"/api/events/" + fe.ev.ID + "/thumb.jpg", http.StatusOK},
		{"/api/events/" + fe.ev.ID + "/clip", http.StatusOK},
	} {
		start := time.Now()
		res, err := http.Get(ts.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Logf("%s: %d in %v", tc.path, res.StatusCode, time.Since(start).Round(time.Millisecond))
		if res.StatusCode != tc.want || (tc.want != http.StatusOK && (res.Header.Get("Content-Type") != "application/json" || !bytes.Contains(body, []byte(`"error"`)))) {
			t.Errorf("%s: %d %s %.200s, want %d", tc.path, res.StatusCode, res.Header.Get("Content-Type"), body, tc.want)
		}
	}
}
