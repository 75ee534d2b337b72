package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/replay"
	"camhub/internal/wire"
)

// snapshotTimeout bounds reading a snapshot from the hub's buffer.
const snapshotTimeout = 5 * time.Second

// Who may use a route.
const (
	// routeLogin: with Config.Login, only requests with a login (session
	// cookie, Basic or Bearer credentials): the rest get 401. Every route
	// is this unless it says otherwise.
	routeLogin = iota
	// routePage: as routeLogin, but without a login the answer is a
	// redirect to the login page.
	routePage
	// routePublic: anyone; it shows nothing of any camera.
	routePublic
)

// route is one of the server's routes.
type route struct {
	pattern string // http.ServeMux pattern
	access  int    // routeLogin, routePage or routePublic
	h       http.Handler
}

// routeTable is every route the server serves. Each is checked by
// protect unless it is public, and the tests request each without a
// login, with a wrong one and with one for other cameras.
func (s *Server) routeTable() ([]route, error) {
	ui, err := uiFS()
	if err != nil {
		return nil, err
	}
	metrics, err := s.metricsHandler()
	if err != nil {
		return nil, err
	}
	return []route{
		{"GET /{$}", routePage, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, ui, "index.html")
		})},
		{"GET /static/", routePublic, http.StripPrefix("/static/", http.FileServerFS(ui))},
		{"GET /login", routePublic, http.HandlerFunc(s.handleLoginPage)},
		{"POST /login", routePublic, http.HandlerFunc(s.handleLogin)},
		{"POST /logout", routePublic, http.HandlerFunc(s.handleLogout)},
		{"GET /api/me", routeLogin, http.HandlerFunc(s.handleMe)},
		{"GET /api/cams", routeLogin, http.HandlerFunc(s.handleCams)},
		{"GET /api/stream", routeLogin, http.HandlerFunc(s.handleStream)},
		{"GET /api/media", routeLogin, http.HandlerFunc(s.handleMedia)},                         // mse.go
		{"GET /api/events", routeLogin, http.HandlerFunc(s.handleEvents)},                       // events.go
		{"GET /api/events/{event}/thumb.jpg", routeLogin, http.HandlerFunc(s.handleEventThumb)}, // events.go
		{"GET /api/events/{event}/clip", routeLogin, http.HandlerFunc(s.handleEventClip)},       // events.go
		{"GET /api/timeline", routeLogin, http.HandlerFunc(s.handleTimeline)},
		{"GET /api/still", routeLogin, http.HandlerFunc(s.handleStill)},
		{"GET /cams/{id}/snapshot.jpg", routeLogin, http.HandlerFunc(s.handleSnapshot)},
		{"GET /cams/{id}/stream.mjpg", routeLogin, http.HandlerFunc(s.handleMJPEG)},
		{"GET /healthz", routePublic, http.HandlerFunc(s.handleHealth)},
		{"GET /metrics", routeLogin, s.filteredMetrics(metrics)},
		{"/", routePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				writeError(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
				return
			}
			writeError(w, http.StatusNotFound, "no such page: %s", r.URL.Path)
		})},
	}, nil
}

// routes builds the server's handler. Cross-origin POSTs (a login or
// logout forged by another site) are refused: browsers say where a
// request comes from (Sec-Fetch-Site, Origin), and the session cookie is
// SameSite=Strict besides.
func (s *Server) routes() (http.Handler, error) {
	table, err := s.routeTable()
	if err != nil {
		return nil, err
	}
	s.table = table
	mux := http.NewServeMux()
	for _, rt := range table {
		h := rt.h
		if rt.access != routePublic {
			h = s.protect(h, rt.access == routePage)
		}
		mux.Handle(rt.pattern, h)
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return guard(s, cop.Handler(mux)), nil
}

// guard sets the headers every answer has and turns a panic into a 500,
// so that one bad request costs only itself.
func guard(s *Server, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving a request", "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// apiError is the body of every error answer.
type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// writeError answers with status and a JSON body saying why.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	h := w.Header()
	for _, k := range []string{"Content-Disposition", wire.HeaderSeq, wire.HeaderTime, wire.HeaderWidth, wire.HeaderHeight, "Content-Length"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(apiError{Error: fmt.Sprintf(format, args...), Status: status})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// unknownCamera answers 404 for a camera the server does not show.
func unknownCamera(w http.ResponseWriter, id string) {
	if err := wire.ValidateID(id); err != nil {
		writeError(w, http.StatusNotFound, "unknown camera: %v", err)
		return
	}
	writeError(w, http.StatusNotFound, "unknown camera %q: it has not reported to the hub or sent a frame", id)
}

// handleCams answers GET /api/cams: the camera list.
func (s *Server) handleCams(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.camerasFor(viewerOf(r), time.Now()))
}

// cameraRequest reads the camera and the query of a /cams/{id}/...
// request. It answers 404 for an unknown camera and 400 for a bad query,
// and then reports false.
func (s *Server) cameraRequest(w http.ResponseWriter, r *http.Request) (string, streamQuery, bool) {
	id := r.PathValue("id")
	// A camera the requester may not see is unknown, in the same words
	// as one that does not exist: the answer does not tell them apart.
	if !s.known(id) || !viewerOf(r).allows(id) {
		unknownCamera(w, id)
		return "", streamQuery{}, false
	}
	q, err := parseQuery(r.URL.RawQuery, MaxCameras)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return "", streamQuery{}, false
	}
	return id, q, true
}

// handleSnapshot answers GET /cams/{id}/snapshot.jpg: the camera's newest
// frame, from the live board or else from the hub's buffer.
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	id, q, ok := s.cameraRequest(w, r)
	if !ok {
		return
	}
	if !q.At.IsZero() {
		s.handleSnapshotAt(w, r, id, q) // timeline.go
		return
	}
	var wf wire.Frame
	var jpeg []byte
	// an H.264 camera's board picture is kept up only while watched
	if f := s.live.newest(id); f != nil && (!s.isVideo(id) || s.watched(id)) {
		wf, jpeg = f.Frame, f.jpeg
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
		rf, err := s.snapshotOf(ctx, s.jsOf(viewerOf(r)), id)
		cancel()
		switch {
		case errors.Is(err, replay.ErrNoDecoder):
			writeError(w, http.StatusNotImplemented, "camera %q sends H.264: %v", id, err)
			return
		case errors.Is(err, replay.ErrNoFrames):
			writeError(w, http.StatusNotFound, "camera %q has no frame yet: %v", id, err)
			return
		case errors.Is(err, replay.ErrNoBuffer):
			writeError(w, http.StatusServiceUnavailable, "camera %q: no live frame, and %v", id, err)
			return
		case err != nil:
			writeError(w, http.StatusBadGateway, "camera %q: %v", id, err)
			return
		}
		wf, jpeg = rf.Frame, rf.JPEG
	}
	writeSnapshot(w, id, wf, jpeg, q.Download)
}

// writeSnapshot answers with a snapshot: JPEG of frame wf of camera id.
func writeSnapshot(w http.ResponseWriter, id string, wf wire.Frame, jpeg []byte, download bool) {
	h := w.Header()
	h.Set("Content-Type", wire.ContentTypeJPEG)
	h.Set("Content-Length", strconv.Itoa(len(jpeg)))
	h.Set("Cache-Control", "no-store")
	disposition := "inline"
	if download {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", fmt.Sprintf("%s; filename=%q", disposition, snapshotName(id, wf.Time)))
	wf.SetHeader(nats.Header(h))
	w.WriteHeader(http.StatusOK)
	w.Write(jpeg)
}

// snapshotName is a snapshot's file name: the camera and the capture time,
// which sort, and contain nothing a file system minds.
func snapshotName(id string, t time.Time) string {
	return id + "-" + strings.ReplaceAll(t.UTC().Format("20060102T150405.000Z"), ".", "_") + ".jpg"
}

// health is the body of GET /healthz.
type health struct {
	Status  string `json:"status"`            // ok, or unavailable
	NATS    string `json:"nats"`              // the NATS connection's state
	Cameras *int   `json:"cameras,omitempty"` // not with logins
	Clients *int   `json:"clients,omitempty"`
}

// handleHealth answers GET /healthz: 200 while connected to NATS, 503
// otherwise.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	st := s.Stats()
	hl := health{Status: "ok", NATS: strings.ToLower(s.nc.Status().String())}
	if s.gate == nil { // with logins, anyone may ask: it says nothing of the cameras
		hl.Cameras, hl.Clients = new(len(s.cameras(time.Now()))), new(st.Clients)
	}
	if !s.nc.IsConnected() || s.ctx.Err() != nil {
		hl.Status = "unavailable"
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(hl)
		return
	}
	writeJSON(w, hl)
}
