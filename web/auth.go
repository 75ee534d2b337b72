package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/wire"
)

// The HTTP side of logins: the login page and form, the session cookie,
// HTTP Basic and Bearer credentials for tools, and the check in front of
// every route that is not public.

// SessionCookie is the name of the session cookie.
const SessionCookie = "camhub_session"

// maxLoginBody bounds a login request's body.
const maxLoginBody = 4 << 10

// identity is who made a request, with Config.Login.
type identity struct {
	acc     *account
	release func() // gives back the reference the request holds; nil: none
	// ctx ends when the login does (logout, expiry, the hub closing the
	// user's connection): the request's streams end with it.
	ctx context.Context
}

type identityKey struct{}

// viewerOf returns who made r; nil without Config.Login (everyone sees
// everything the server shows).
func viewerOf(r *http.Request) *identity {
	id, _ := r.Context().Value(identityKey{}).(*identity)
	return id
}

// allows reports whether the requester may see camera id.
func (id *identity) allows(cam string) bool { return id == nil || id.acc.allows(cam) }

// jsOf is the JetStream context to read the buffer for the requester
// with: their own connection, so that the hub's permissions decide.
func (s *Server) jsOf(id *identity) jetstream.JetStream {
	if id == nil {
		return s.js
	}
	return id.acc.js
}

// parseAuthorization reads an Authorization header: "Basic" with a user
// and password, or "Bearer USER.PASSWORD" (an access token: a hub user's
// name and password; user names have no dots).
func parseAuthorization(h string) (user, password string, ok bool) {
	scheme, cred, found := strings.Cut(strings.TrimSpace(h), " ")
	if !found {
		return "", "", false
	}
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "basic":
		b, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return "", "", false
		}
		user, password, ok = strings.Cut(string(b), ":")
	case "bearer":
		user, password, ok = strings.Cut(cred, ".")
	default:
		return "", "", false
	}
	if !ok || wire.ValidateID(user) != nil || len(user) > maxUserLen || password == "" || len(password) > maxPasswordLen {
		return "", "", false
	}
	return user, password, true
}

// sessionID returns the session id in a Cookie header, if it has a well
// formed one.
func sessionID(cookieHeader string) (string, bool) {
	cookies, err := http.ParseCookie(cookieHeader)
	if err != nil {
		return "", false
	}
	for _, c := range cookies {
		if c.Name == SessionCookie && validSessionID(c.Value) {
			return c.Value, true
		}
	}
	return "", false
}

func validSessionID(v string) bool {
	if len(v) != 2*sessionIDBytes {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// errBadLogin is a login request that is not one.
var errBadLogin = errors.New("a login is a POST of user and password, as a form or JSON")

// parseLogin reads a login request's body: a form (user, password) or
// JSON ({"user": ..., "password": ...}).
func parseLogin(contentType string, body []byte) (user, password string, asJSON bool, err error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", "", false, errBadLogin
	}
	switch mt {
	case "application/json":
		var v struct {
			User     string `json:"user"`
			Password string `json:"password"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&v); err != nil || dec.More() {
			return "", "", true, errBadLogin
		}
		user, password, asJSON = v.User, v.Password, true
	case "application/x-www-form-urlencoded":
		q, err := url.ParseQuery(string(body))
		if err != nil || len(q["user"]) != 1 || len(q["password"]) != 1 {
			return "", "", false, errBadLogin
		}
		user, password = q.Get("user"), q.Get("password")
	default:
		return "", "", false, errBadLogin
	}
	if user == "" || password == "" || len(user) > maxUserLen || len(password) > maxPasswordLen {
		return "", "", asJSON, errBadLogin
	}
	return user, password, asJSON, nil
}

// clientAddr is the address logins are throttled by: the peer's IP. A
// reverse proxy in front makes every client one address; camhub does not
// trust X-Forwarded-For, which any client can send.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// identify returns who made r: by Authorization header (Basic or Bearer)
// or session cookie; nil if neither was given.
func (s *Server) identify(r *http.Request) (*identity, error) {
	var id *identity
	if h := r.Header.Get("Authorization"); h != "" {
		user, pw, ok := parseAuthorization(h)
		if !ok {
			return nil, errWrong
		}
		acc, err := s.gate.credentials(r.Context(), user, pw, clientAddr(r))
		if err != nil {
			return nil, err
		}
		id = &identity{acc: acc, ctx: acc.ctx, release: func() { s.gate.release(acc) }}
	} else if sid, ok := sessionID(strings.Join(r.Header.Values("Cookie"), "; ")); ok {
		if sess := s.gate.session(sid); sess != nil {
			id = &identity{acc: sess.acc, ctx: sess.ctx}
		}
	}
	if id == nil {
		return nil, nil
	}
	if err := s.gate.refresh(r.Context(), id.acc); err != nil {
		if id.release != nil {
			id.release()
		}
		if id.acc.ctx.Err() != nil {
			return nil, nil // the hub closed the connection meanwhile
		}
		return nil, err
	}
	return id, nil
}

// protect lets through only requests with a login, when logins are on.
// Without one, the page redirects to the login page; everything else is
// 401, with a Basic challenge for tools (requests without a session
// cookie: the page's own requests carry one, and a browser must not pop
// up its password dialog over the page).
func (s *Server) protect(h http.Handler, page bool) http.Handler {
	if s.gate == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.identify(r)
		if err == nil && id == nil && page {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if err == nil && id == nil {
			err = errLoginNeeded
		}
		if err != nil {
			if _, cerr := r.Cookie(SessionCookie); cerr != nil {
				w.Header().Set("WWW-Authenticate", `Basic realm="camhub", charset="UTF-8"`)
			}
			loginError(w, err)
			return
		}
		if id.release != nil {
			defer id.release()
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

var errLoginNeeded = errors.New("log in first: POST /login, or HTTP Basic or Bearer credentials")

// loginError answers a login that failed, as JSON.
func loginError(w http.ResponseWriter, err error) {
	status, msg := loginStatus(err)
	var te *throttledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(int(te.wait.Round(time.Second)/time.Second)+1))
	}
	writeError(w, status, "%s", msg)
}

// loginStatus is the status and message of a failed login. Nothing in it
// tells a wrong user from a wrong password.
func loginStatus(err error) (int, string) {
	switch {
	case errors.Is(err, errThrottled):
		return http.StatusTooManyRequests, errThrottled.Error()
	case errors.Is(err, errWrong), errors.Is(err, errLoginNeeded):
		return http.StatusUnauthorized, err.Error()
	case errors.Is(err, errNoCameras):
		return http.StatusForbidden, errNoCameras.Error()
	case errors.Is(err, errBusy):
		return http.StatusServiceUnavailable, errBusy.Error()
	default:
		return http.StatusServiceUnavailable, errHub.Error()
	}
}

// loginPage is ui/login.html.
var loginPage = template.Must(template.ParseFS(uiFiles, "ui/login.html"))

// servePage answers with the login page, saying msg if any.
func servePage(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	loginPage.Execute(w, struct{ Error string }{msg})
}

// handleLoginPage answers GET /login.
func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if s.gate == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if sid, ok := sessionID(strings.Join(r.Header.Values("Cookie"), "; ")); ok && s.gate.session(sid) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	servePage(w, http.StatusOK, "")
}

// handleLogin answers POST /login: a form (then a redirect to the page)
// or JSON (then JSON). The session is a cookie; the answer holds no
// secret.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if s.gate == nil {
		writeError(w, http.StatusNotFound, "this server has no logins: everyone may see its cameras")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "%v", err)
		return
	}
	user, pw, asJSON, err := parseLogin(r.Header.Get("Content-Type"), body)
	if err != nil {
		if asJSON {
			writeError(w, http.StatusBadRequest, "%v", err)
		} else {
			servePage(w, http.StatusBadRequest, err.Error())
		}
		return
	}
	acc, err := s.gate.verify(r.Context(), user, pw, clientAddr(r))
	var sid string
	if err == nil {
		sid, err = s.gate.newSession(acc)
	}
	if err != nil {
		if asJSON {
			loginError(w, err)
			return
		}
		status, msg := loginStatus(err)
		var te *throttledError
		if errors.As(err, &te) {
			w.Header().Set("Retry-After", strconv.Itoa(int(te.wait.Round(time.Second)/time.Second)+1))
		}
		servePage(w, status, msg)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: s.tls != nil, MaxAge: int(s.gate.cfg.SessionMax / time.Second),
	})
	w.Header().Set("Cache-Control", "no-store")
	if asJSON {
		writeJSON(w, me{User: user, Login: true, AllCameras: acc.all()})
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleLogout answers POST /logout: the session ends, the cookie goes.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if s.gate != nil {
		if sid, ok := sessionID(strings.Join(r.Header.Values("Cookie"), "; ")); ok {
			s.gate.logout(sid)
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: s.tls != nil, MaxAge: -1,
	})
	w.Header().Set("Cache-Control", "no-store")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		writeJSON(w, me{})
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// me is the body of GET /api/me.
type me struct {
	User       string `json:"user,omitempty"` // who is logged in
	Login      bool   `json:"login"`          // the server asks who one is
	AllCameras bool   `json:"all_cameras"`    // the user may see every camera
}

// handleMe answers GET /api/me: who is logged in.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	id := viewerOf(r)
	if id == nil {
		writeJSON(w, me{AllCameras: true})
		return
	}
	writeJSON(w, me{User: id.acc.name, Login: true, AllCameras: id.acc.all()})
}
