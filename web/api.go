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

// routes builds the server's handler.
func (s *Server) routes() (http.Handler, error) {
	ui, err := uiFS()
	if err != nil {
		return nil, err
	}
	metrics, err := s.metricsHandler()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, ui, "index.html")
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(ui)))
	mux.HandleFunc("GET /api/cams", s.handleCams)
	mux.HandleFunc("GET /api/stream", s.handleStream)
	mux.HandleFunc("GET /api/media", s.handleMedia) // mse.go
	mux.HandleFunc("GET /cams/{id}/snapshot.jpg", s.handleSnapshot)
	mux.HandleFunc("GET /cams/{id}/stream.mjpg", s.handleMJPEG)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
			return
		}
		writeError(w, http.StatusNotFound, "no such page: %s", r.URL.Path)
	})
	return guard(s, mux), nil
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
	writeJSON(w, s.cameras(time.Now()))
}

// cameraRequest reads the camera and the query of a /cams/{id}/...
// request. It answers 404 for an unknown camera and 400 for a bad query,
// and then reports false.
func (s *Server) cameraRequest(w http.ResponseWriter, r *http.Request) (string, streamQuery, bool) {
	id := r.PathValue("id")
	if !s.known(id) {
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
	var wf wire.Frame
	var jpeg []byte
	// an H.264 camera's board picture is kept up only while watched
	if f := s.live.newest(id); f != nil && (!s.isVideo(id) || s.watched(id)) {
		wf, jpeg = f.Frame, f.jpeg
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
		rf, err := s.snapshotOf(ctx, id)
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
	h := w.Header()
	h.Set("Content-Type", wire.ContentTypeJPEG)
	h.Set("Content-Length", strconv.Itoa(len(jpeg)))
	h.Set("Cache-Control", "no-store")
	disposition := "inline"
	if q.Download {
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
	Status  string `json:"status"` // ok, or unavailable
	NATS    string `json:"nats"`   // the NATS connection's state
	Cameras int    `json:"cameras"`
	Clients int    `json:"clients"`
}

// handleHealth answers GET /healthz: 200 while connected to NATS, 503
// otherwise.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	st := s.Stats()
	hl := health{Status: "ok", NATS: strings.ToLower(s.nc.Status().String()), Cameras: len(s.cameras(time.Now())), Clients: st.Clients}
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
