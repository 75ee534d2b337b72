package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"
)

var queryCases = []struct {
	raw string
	ok  bool
	q   streamQuery
}{
	{"", true, streamQuery{Speed: 1}},
	{"since=10s", true, streamQuery{Since: 10 * time.Second, Speed: 1}},
	{"since=30", true, streamQuery{Since: 30 * time.Second, Speed: 1}},
	{"since=2.5", true, streamQuery{Since: 2500 * time.Millisecond, Speed: 1}},
	{"since=1m30s&speed=2&fps=5", true, streamQuery{Since: 90 * time.Second, Speed: 2, FPS: 5}},
	{"since=0", true, streamQuery{Speed: 1}},
	{"cams=a,b,,a", true, streamQuery{Speed: 1, Cams: []string{"a", "b"}}},
	{"download=1&t=123", true, streamQuery{Speed: 1, Download: true}},
	{"since=abc", false, streamQuery{}},
	{"since=-1s", false, streamQuery{}},
	{"since=-5", false, streamQuery{}},
	{"since=25h", false, streamQuery{}},
	{"since=NaN", false, streamQuery{}},
	{"since=Inf", false, streamQuery{}},
	{"since=1e400", false, streamQuery{}},
	{"speed=0", false, streamQuery{}},
	{"speed=17", false, streamQuery{}},
	{"speed=-1", false, streamQuery{}},
	{"fps=NaN", false, streamQuery{}},
	{"fps=-1", false, streamQuery{}},
	{"cams=a.b", false, streamQuery{}},
	{"cams=%zz", false, streamQuery{}},
	{"download=maybe", false, streamQuery{}},
	{"since=%", false, streamQuery{}},
	{"at=0", false, streamQuery{}},
	{"at=-1", false, streamQuery{}},
	{"at=1000000000000", false, streamQuery{}}, // 2001: older than MaxSince
	{"at=4102444800000", false, streamQuery{}}, // 2100
	{"at=NaN", false, streamQuery{}},
	{"at=Infinity", false, streamQuery{}},
	{"at=1e300", false, streamQuery{}},
	{"at=2001-09-09T01:46:40Z", false, streamQuery{}},
	{"at=yesterday", false, streamQuery{}},
}

func TestParseQuery(t *testing.T) {
	for _, tc := range queryCases {
		q, err := parseQuery(tc.raw, 4)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadRequest)) {
			t.Errorf("%q: %v", tc.raw, err)
			continue
		}
		if tc.ok && (q.Since != tc.q.Since || q.Speed != tc.q.Speed || q.FPS != tc.q.FPS || q.Download != tc.q.Download ||
			len(q.Cams) != len(tc.q.Cams)) {
			t.Errorf("%q: %+v, want %+v", tc.raw, q, tc.q)
		}
	}
	// a capture time, in milliseconds or RFC 3339
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for _, raw := range []string{"at=" + strconv.FormatInt(at.UnixMilli(), 10), "at=" + url.QueryEscape(at.Format(time.RFC3339Nano))} {
		q, err := parseQuery(raw+"&speed=2", 4)
		if err != nil || !q.At.Equal(at) || q.live() || !q.start(time.Now()).Equal(at) || q.Speed != 2 {
			t.Errorf("%q: %+v, %v; want a rewind to %v", raw, q, err, at)
		}
	}
	if _, err := parseQuery("cams=a,b,c,d,e", 4); err == nil {
		t.Error("5 cameras accepted with at most 4")
	}
}

// FuzzQuery: whatever the query, parsing returns a bounded request or an
// ErrBadRequest, and the server answers without panicking: run with
// go test -fuzz FuzzQuery ./web/
func FuzzQuery(f *testing.F) {
	for _, tc := range queryCases {
		f.Add(tc.raw)
	}
	f.Add("since=10s&since=abc&cams=" + url.QueryEscape("a,b"))
	_, nc := startHub(f)
	s, err := New(Config{}, nc, quiet())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw, MaxCameras)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("%q: %v does not wrap ErrBadRequest", raw, err)
			}
		} else if q.Since < 0 || q.Since > MaxSince || !(q.Speed > 0 && q.Speed <= MaxSpeed) ||
			!(q.FPS >= 0 && q.FPS <= MaxFPS) || len(q.Cams) > MaxCameras ||
			(!q.At.IsZero() && (time.Since(q.At) > MaxSince+time.Minute || time.Until(q.At) > maxAhead)) {
			t.Fatalf("%q: out of bounds: %+v", raw, q)
		}
		// Requests that answer at once (no stream is opened: no camera
		// exists), through the whole handler.
		for _, path := range []string{"/api/cams?", "/cams/x/snapshot.jpg?", "/cams/x/stream.mjpg?", "/healthz?", "/api/timeline?", "/api/still?"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path, req.URL.RawQuery = path[:len(path)-1], raw
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("%s%s: %d %s", path, raw, rec.Code, rec.Body)
			}
		}
	})
}
