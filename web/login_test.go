package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"camhub/hub"
	"camhub/internal/natsconn"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// clock is a clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// loginEnv is a hub with users (see securedHub: admin, frontonly,
// viewer, agent; passwords "pw-<user>"), cameras front and back sending,
// and a web server with logins whose own connection is the admin's.
type loginEnv struct {
	h           *hub.Server
	s           *Server
	ts          *httptest.Server
	front, back *camera
}

func startLoginWeb(t *testing.T, login Login, certs ...string) *loginEnv {
	t.Helper()
	h, pw := securedHub(t)
	nc, err := natsconn.Dial(h.ClientURL(), natsconn.DialOptions{Auth: natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	login.NATS = h.ClientURL()
	cfg := Config{Login: &login}
	if len(certs) == 2 {
		cfg.TLSCert, cfg.TLSKey = certs[0], certs[1]
	}
	s, err := New(cfg, nc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	var ts *httptest.Server
	if s.tls != nil {
		ts = httptest.NewUnstartedServer(s.Handler())
		ts.TLS = s.tls.Clone()
		ts.StartTLS()
	} else {
		ts = httptest.NewServer(s.Handler())
	}
	t.Cleanup(ts.Close)
	t.Cleanup(s.Close)
	e := &loginEnv{h: h, s: s, ts: ts, front: newCamera(t, nc, "front", 64, 48, 3, 0), back: newCamera(t, nc, "back", 64, 48, 3, 0)}
	e.front.run(100 * time.Millisecond)
	e.back.run(100 * time.Millisecond)
	testenv.Eventually(t, 10*time.Second, "the web viewer to know front and back", func() bool {
		return s.known("front") && s.known("back") && s.live.newest("front") != nil && s.live.newest("back") != nil
	})
	return e
}

// noRedirects is a client that shows redirects instead of following them.
func noRedirects(ts *httptest.Server) *http.Client {
	c := *ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// login posts the login form and returns the answer and the session
// cookie it set, if any.
func login(t *testing.T, ts *httptest.Server, user, password string) (*http.Response, *http.Cookie) {
	t.Helper()
	form := url.Values{"user": {user}, "password": {password}}
	resp, err := noRedirects(ts).PostForm(ts.URL+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie && c.Value != "" {
			return resp, c
		}
	}
	return resp, nil
}

// answer is a response, its body read unless it is a stream.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends req and reads the answer.
func do(t *testing.T, c *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode == http.StatusOK && isStream(resp.Header) {
		return a // a stream: endless
	}
	a.body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL.Path, err)
	}
	return a
}

// isStream reports whether an answer's type is anything but the finite
// kinds the server answers (JSON, HTML, CSS, JavaScript, text, a JPEG):
// a stream of frames, or of video.
func isStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	for _, finite := range []string{"application/json", "text/", wire.ContentTypeJPEG} {
		if strings.HasPrefix(ct, finite) {
			return false
		}
	}
	return true
}

// routeRequest is a request of a route's pattern, naming camera cam in its
// path ({id}) and in the query parameters a route may take cameras by.
func routeRequest(t *testing.T, base, pattern, cam string) *http.Request {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = http.MethodGet, "/no-such-page"
	}
	path = strings.ReplaceAll(path, "{$}", "")
	path = strings.ReplaceAll(path, "{id}", cam)
	if strings.HasSuffix(path, "/static/") {
		path += "style.css"
	}
	path += "?cams=" + cam + "&cam=" + cam + "&id=" + cam
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

// Every route, enumerated from the server's own table: without a login,
// with a wrong one, and with a user limited to front asking for back.
// Nothing but the login page, static files and the health check is
// answered without a login; back's answers to front's user are those of a
// camera that does not exist (404, the same words), never a picture; and
// no answer names back.
func TestEveryRouteNeedsTheRightLogin(t *testing.T) {
	e := startLoginWeb(t, Login{FreeAttempts: 1000})
	_, cookie := login(t, e.ts, "frontonly", "pw-frontonly")
	if cookie == nil {
		t.Fatal("frontonly could not log in")
	}
	basic := func(user, pw string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pw) }
	}
	clients := []struct {
		name string
		auth func(*http.Request)
	}{
		{"nobody", func(*http.Request) {}},
		{"wrong password", basic("frontonly", "wrong")},
		{"unknown user", basic("mallory", "pw-frontonly")},
		{"wrong session", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: SessionCookie, Value: strings.Repeat("ab", sessionIDBytes)})
		}},
		{"front's session", func(r *http.Request) { r.AddCookie(cookie) }},
		{"front's Basic", basic("frontonly", "pw-frontonly")},
		{"front's Bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer frontonly.pw-frontonly") }},
	}
	c := noRedirects(e.ts)
	if len(e.s.table) < 12 {
		t.Fatalf("the route table has %d routes", len(e.s.table))
	}
	for _, rt := range e.s.table {
		for _, cl := range clients {
			if rt.pattern == "POST /logout" && cl.name == "front's session" {
				continue // it would end the session; TestSessionCookie logs out
			}
			t.Run(rt.pattern+"/"+cl.name, func(t *testing.T) {
				req := routeRequest(t, e.ts.URL, rt.pattern, "back")
				cl.auth(req)
				a := do(t, c, req)
				front := strings.HasPrefix(cl.name, "front")
				if ct := a.header.Get("Content-Type"); ct == wire.ContentTypeJPEG || (a.status == http.StatusOK && isStream(a.header)) {
					t.Fatalf("%d %s: a picture or stream for a request naming back", a.status, ct)
				}
				html := strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || strings.HasPrefix(a.header.Get("Content-Type"), "text/css")
				switch {
				case rt.access == routePublic:
					if a.status == http.StatusUnauthorized || a.status >= 500 {
						t.Fatalf("public route: %d %s", a.status, a.body)
					}
				case rt.access == routePage && (cl.name == "nobody" || cl.name == "wrong session"):
					if a.status != http.StatusSeeOther || a.header.Get("Location") != "/login" {
						t.Fatalf("%d to %q, want a redirect to /login", a.status, a.header.Get("Location"))
					}
				case !front:
					if a.status != http.StatusUnauthorized {
						t.Fatalf("%d %s, want 401", a.status, a.body)
					}
					if cl.name == "nobody" && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic ") {
						t.Fatalf("no Basic challenge for tools: %v", a.header)
					}
				case a.status == http.StatusNotFound:
					// the user's own request named back: the answer
					// must be that of a camera that does not exist
					nreq := routeRequest(t, e.ts.URL, rt.pattern, "nosuchcam")
					cl.auth(nreq)
					none := do(t, c, nreq)
					if none.status != a.status || !bytes.Equal(bytes.ReplaceAll(none.body, []byte("nosuchcam"), []byte("back")), a.body) {
						t.Fatalf("back: %d %s; a camera that does not exist: %d %s", a.status, a.body, none.status, none.body)
					}
					return
				case strings.Contains(rt.pattern, "{id}"):
					t.Fatalf("%d %s, want 404", a.status, a.body)
				default:
					if a.status != http.StatusOK {
						t.Fatalf("%d %s, want 200", a.status, a.body)
					}
				}
				if !html && bytes.Contains(a.body, []byte("back")) {
					t.Fatalf("%d: the answer names back: %s", a.status, a.body)
				}
			})
		}
	}

	// The same routes for front's user and front, and for a user of every
	// camera and back: they are there (the 404s above are not for want of
	// a camera back).
	for _, who := range []struct{ user, cam string }{{"frontonly", "front"}, {"viewer", "back"}, {"admin", "back"}} {
		for _, rt := range e.s.table {
			if !strings.Contains(rt.pattern, "{id}") && rt.pattern != "GET /api/stream" {
				continue
			}
			req := routeRequest(t, e.ts.URL, rt.pattern, who.cam)
			req.SetBasicAuth(who.user, "pw-"+who.user)
			if a := do(t, c, req); a.status != http.StatusOK {
				t.Errorf("%s %s for %s: %d %s", who.user, req.URL, who.cam, a.status, a.body)
			}
		}
	}

	// /api/cams and the page's stream of every camera: front alone.
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/api/cams", nil)
	req.AddCookie(cookie)
	var cams []Camera
	if a := do(t, c, req); a.status != http.StatusOK || json.Unmarshal(a.body, &cams) != nil || len(cams) != 1 || cams[0].ID != "front" {
		t.Fatalf("/api/cams for frontonly: %d %s", a.status, a.body)
	}
	ids := streamIDs(t, c, e.ts.URL+"/api/stream", cookie, 10)
	for _, id := range ids {
		if id != "front" {
			t.Fatalf("the stream of every camera for frontonly carried %q", id)
		}
	}
	ids = streamIDs(t, c, e.ts.URL+"/api/stream", nil, 10, "viewer")
	if !slicesContain(ids, "back") {
		t.Fatalf("the stream of every camera for viewer carried %v, not back", ids)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// streamIDs reads n frames of the page's stream at url, with cookie or
// else as basicUser, and returns their cameras.
func streamIDs(t *testing.T, c *http.Client, url string, cookie *http.Cookie, n int, basicUser ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	} else {
		req.SetBasicAuth(basicUser[0], "pw-"+basicUser[0])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	var ids []string
	br := newRecordReader(resp.Body)
	for range n {
		id, err := br.next()
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		ids = append(ids, id)
	}
	return ids
}

// recordReader reads the records of a MuxContentType stream.
type recordReader struct {
	r   io.Reader
	buf bytes.Buffer
	seq uint64 // the Frame-Seq of the record last read
}

func newRecordReader(r io.Reader) *recordReader { return &recordReader{r: r} }

func (rr *recordReader) next() (string, error) {
	line, err := rr.line()
	if err != nil {
		return "", err
	}
	var head struct {
		ID  string `json:"id"`
		Seq uint64 `json:"seq"`
		Len int    `json:"len"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return "", fmt.Errorf("record header %q: %w", line, err)
	}
	for rr.buf.Len() < head.Len {
		if err := rr.fill(); err != nil {
			return "", err
		}
	}
	rr.buf.Next(head.Len)
	rr.seq = head.Seq
	return head.ID, nil
}

func (rr *recordReader) line() ([]byte, error) {
	for {
		if i := bytes.IndexByte(rr.buf.Bytes(), '\n'); i >= 0 {
			l := append([]byte(nil), rr.buf.Next(i+1)...)
			return l[:i], nil
		}
		if err := rr.fill(); err != nil {
			return nil, err
		}
	}
}

func (rr *recordReader) fill() error {
	b := make([]byte, 32<<10)
	n, err := rr.r.Read(b)
	rr.buf.Write(b[:n])
	if n > 0 {
		return nil
	}
	return err
}

// The session cookie: a 256-bit random id, HttpOnly, SameSite=Strict,
// Path=/, Secure over HTTPS; logout ends it; a login is a POST only, and
// a cross-origin one is refused.
func TestSessionCookie(t *testing.T) {
	certFile, keyFile, ca := writeCert(t)
	for _, https := range []bool{false, true} {
		t.Run(fmt.Sprintf("https=%v", https), func(t *testing.T) {
			var e *loginEnv
			if https {
				e = startLoginWeb(t, Login{}, certFile, keyFile)
				e.ts.Client().Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: ca}
			} else {
				e = startLoginWeb(t, Login{})
			}
			resp, cookie := login(t, e.ts, "frontonly", "pw-frontonly")
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || cookie == nil {
				t.Fatalf("login: %d to %q, cookie %v", resp.StatusCode, resp.Header.Get("Location"), cookie)
			}
			if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.Secure != https ||
				!validSessionID(cookie.Value) || cookie.Domain != "" {
				t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, Secure=%v, a 64-hex-digit id", cookie, https)
			}
			c := noRedirects(e.ts)
			get := func(path string, cookie *http.Cookie) answer {
				req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
				if cookie != nil {
					req.AddCookie(cookie)
				}
				return do(t, c, req)
			}
			var m me
			if a := get("/api/me", cookie); a.status != 200 || json.Unmarshal(a.body, &m) != nil || m.User != "frontonly" || !m.Login || m.AllCameras {
				t.Fatalf("/api/me: %d %s", a.status, a.body)
			}
			if a := get("/login", cookie); a.status != http.StatusSeeOther {
				t.Fatalf("the login page, logged in: %d, want a redirect to the page", a.status)
			}
			// a login is never a GET: no password in a URL
			if a := get("/login?user=frontonly&password=pw-frontonly", nil); a.status != http.StatusOK || a.header.Get("Set-Cookie") != "" {
				t.Fatalf("GET /login with a password in the query: %d, Set-Cookie %q", a.status, a.header.Get("Set-Cookie"))
			}
			// another site's form posting a login is refused
			req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/login", strings.NewReader("user=frontonly&password=pw-frontonly"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", "https://evil.example")
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			if a := do(t, c, req); a.status != http.StatusForbidden || a.header.Get("Set-Cookie") != "" {
				t.Fatalf("cross-origin login: %d", a.status)
			}
			// JSON login
			req, _ = http.NewRequest(http.MethodPost, e.ts.URL+"/login", strings.NewReader(`{"user":"viewer","password":"pw-viewer"}`))
			req.Header.Set("Content-Type", "application/json")
			if a := do(t, c, req); a.status != http.StatusOK || json.Unmarshal(a.body, &m) != nil || m.User != "viewer" || !m.AllCameras ||
				!strings.Contains(a.header.Get("Set-Cookie"), SessionCookie+"=") {
				t.Fatalf("JSON login: %d %s", a.status, a.body)
			}
			// an agent may not view
			if resp, cookie := login(t, e.ts, "agent", "pw-agent"); resp.StatusCode != http.StatusForbidden || cookie != nil {
				t.Fatalf("an agent's login: %d, cookie %v", resp.StatusCode, cookie)
			}

			// logout: the cookie is cleared and the session is over
			req, _ = http.NewRequest(http.MethodPost, e.ts.URL+"/logout", nil)
			req.AddCookie(cookie)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cleared := false
			for _, ck := range resp.Cookies() {
				cleared = cleared || (ck.Name == SessionCookie && ck.Value == "" && ck.MaxAge < 0)
			}
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" || !cleared {
				t.Fatalf("logout: %d to %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
			}
			if a := get("/api/cams", cookie); a.status != http.StatusUnauthorized {
				t.Fatalf("/api/cams after logout: %d", a.status)
			}
			if a := get("/", cookie); a.status != http.StatusSeeOther {
				t.Fatalf("the page after logout: %d", a.status)
			}
		})
	}
}

// Sessions end after SessionIdle unused, and SessionMax after the login
// however used.
func TestSessionExpiry(t *testing.T) {
	clk := &clock{now: time.Now()}
	e := startLoginWeb(t, Login{SessionIdle: time.Hour, SessionMax: 4 * time.Hour, now: clk.Now})
	c := noRedirects(e.ts)
	status := func(cookie *http.Cookie) int {
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/api/me", nil)
		req.AddCookie(cookie)
		return do(t, c, req).status
	}
	_, idle := login(t, e.ts, "frontonly", "pw-frontonly")
	_, busy := login(t, e.ts, "frontonly", "pw-frontonly")
	for range 4 {
		clk.Add(50 * time.Minute)
		if st := status(busy); st != http.StatusOK {
			t.Fatalf("a session used every 50 min: %d", st)
		}
	}
	if st := status(idle); st != http.StatusUnauthorized {
		t.Fatalf("a session unused for 200 min: %d, want 401", st)
	}
	clk.Add(50 * time.Minute) // 250 min since the login
	if st := status(busy); st != http.StatusUnauthorized {
		t.Fatalf("a session past SessionMax: %d, want 401", st)
	}
	testenv.Eventually(t, 10*time.Second, "the user's hub connection to close", func() bool {
		_, users := e.s.gate.counts()
		return users == 0
	})
}

// 50 wrong passwords: after FreeAttempts the user is throttled (429,
// unchecked, even with the right password), the attempts are counted, and
// once the window has passed the right password gets in. Wrong passwords
// for many users from one address throttle that address.
func TestLoginThrottle(t *testing.T) {
	clk := &clock{now: time.Now()}
	e := startLoginWeb(t, Login{FreeAttempts: 5, Lockout: time.Minute, now: clk.Now})
	g := e.s.gate
	for i := range 50 {
		resp, cookie := login(t, e.ts, "frontonly", fmt.Sprintf("guess%d", i))
		want := http.StatusUnauthorized
		if i >= 5 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want || cookie != nil {
			t.Fatalf("wrong password %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if g.loginsWrong.Load() != 5 || g.loginsThrottled.Load() != 45 {
		t.Fatalf("counted %d wrong, %d throttled; want 5, 45", g.loginsWrong.Load(), g.loginsThrottled.Load())
	}
	if resp, _ := login(t, e.ts, "frontonly", "pw-frontonly"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the right password while throttled: %d, want 429", resp.StatusCode)
	}
	// Basic credentials are throttled the same way
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/api/cams", nil)
	req.SetBasicAuth("frontonly", "pw-frontonly")
	if a := do(t, e.ts.Client(), req); a.status != http.StatusTooManyRequests {
		t.Fatalf("Basic while throttled: %d", a.status)
	}
	clk.Add(time.Minute + time.Second)
	if resp, cookie := login(t, e.ts, "frontonly", "pw-frontonly"); resp.StatusCode != http.StatusSeeOther || cookie == nil {
		t.Fatalf("the right password after the window: %d", resp.StatusCode)
	}
	// the metric: 45 wrong passwords, the right one and Basic, throttled
	req, _ = http.NewRequest(http.MethodGet, e.ts.URL+"/metrics", nil)
	req.SetBasicAuth("admin", "pw-admin")
	a := do(t, e.ts.Client(), req)
	if !bytes.Contains(a.body, []byte(`camhub_web_logins_total{result="throttled"} 47`)) {
		t.Fatalf("metrics: %d\n%s", a.status, grepLines(a.body, "camhub_web_login"))
	}

	// one address, many users
	for i := range 5 {
		if resp, _ := login(t, e.ts, fmt.Sprintf("nobody%d", i), "x"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unknown user %d: %d", i, resp.StatusCode)
		}
	}
	if resp, _ := login(t, e.ts, "viewer", "pw-viewer"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a right password from a throttled address: %d, want 429", resp.StatusCode)
	}
	clk.Add(time.Minute + time.Second)
	if resp, _ := login(t, e.ts, "viewer", "pw-viewer"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the window: %d", resp.StatusCode)
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Basic credentials are checked with the hub once per CredentialCache,
// not at every request: an MJPEG client that reconnects costs no bcrypt.
// A stream outlives the cache entry that let it in; the user's hub
// connection closes when the last request and entry are gone.
func TestBasicCredentialsCached(t *testing.T) {
	clk := &clock{now: time.Now()}
	e := startLoginWeb(t, Login{CredentialCache: time.Minute, now: clk.Now})
	for range 5 {
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/cams/front/snapshot.jpg", nil)
		req.SetBasicAuth("frontonly", "pw-frontonly")
		if a := do(t, e.ts.Client(), req); a.status != http.StatusOK || a.header.Get("Content-Type") != wire.ContentTypeJPEG {
			t.Fatalf("snapshot with Basic: %d %s", a.status, a.body)
		}
	}
	if n := e.s.gate.loginsOK.Load(); n != 1 {
		t.Fatalf("the hub was asked %d times, want 1", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/cams/front/stream.mjpg", nil)
	req.SetBasicAuth("frontonly", "pw-frontonly")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parts := multipart.NewReader(resp.Body, boundary)
	part := func() {
		t.Helper()
		p, err := parts.NextPart()
		if err != nil {
			t.Fatalf("MJPEG part: %v", err)
		}
		io.Copy(io.Discard, p)
	}
	part()
	clk.Add(2 * time.Minute)
	e.s.gate.sweep() // the cache entry expires
	e.s.gate.mu.Lock()
	cached := len(e.s.gate.creds)
	e.s.gate.mu.Unlock()
	if cached != 0 {
		t.Fatalf("%d credentials cached after they expired", cached)
	}
	for range 3 {
		part() // the stream goes on
	}
	if _, users := e.s.gate.counts(); users != 1 {
		t.Fatalf("%d users connected to the hub while the stream runs, want 1", users)
	}
	cancel()
	testenv.Eventually(t, 10*time.Second, "the user's hub connection to close", func() bool {
		_, users := e.s.gate.counts()
		return users == 0
	})
}

// A user the hub removes (its users reloaded) is logged out at once: its
// sessions end, its streams end, its cached credentials go.
func TestRevokedUserSessionsEnd(t *testing.T) {
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{
			{Username: "admin", Password: "pw-admin"},
			{Username: "family", Password: "pw-family", Permissions: hub.ViewerPermissions("family", []string{"front"})},
		},
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	nc := testenv.Conn(t, ns.ClientURL(), nats.UserInfo("admin", "pw-admin"))
	s, ts := startWeb(t, Config{Login: &Login{NATS: ns.ClientURL()}}, nc)
	cam := newCamera(t, nc, "front", 64, 48, 2, 0)
	cam.run(50 * time.Millisecond)
	testenv.Eventually(t, 10*time.Second, "front's first frame", func() bool { return s.live.newest("front") != nil })

	_, cookie := login(t, ts, "family", "pw-family")
	if cookie == nil {
		t.Fatal("family could not log in")
	}
	// a live stream with the session, and cached Basic credentials
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/cams/front/stream.mjpg", nil)
	req.AddCookie(cookie)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("MJPEG: %d", resp.StatusCode)
	}
	basic, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/cams", nil)
	basic.SetBasicAuth("family", "pw-family")
	if a := do(t, ts.Client(), basic); a.status != http.StatusOK {
		t.Fatalf("Basic: %d", a.status)
	}

	// the hub's users are reloaded without family
	nopts := *opts
	nopts.Port = ns.Addr().(*net.TCPAddr).Port
	nopts.Users = opts.Users[:1]
	if err := ns.ReloadOptions(&nopts); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the user's stream to end", func() bool { return s.Stats().Clients == 0 })
	io.Copy(io.Discard, resp.Body) // ended by the server
	testenv.Eventually(t, 10*time.Second, "the session to end", func() bool {
		r, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/cams", nil)
		r.AddCookie(cookie)
		return do(t, ts.Client(), r).status == http.StatusUnauthorized
	})
	basic, _ = http.NewRequest(http.MethodGet, ts.URL+"/api/cams", nil)
	basic.SetBasicAuth("family", "pw-family")
	if a := do(t, ts.Client(), basic); a.status != http.StatusUnauthorized {
		t.Fatalf("Basic after the user was removed: %d", a.status)
	}
	if s.gate.sessionsEnded.Load() != 1 {
		t.Fatalf("sessions ended by the hub: %d, want 1", s.gate.sessionsEnded.Load())
	}
	if resp, _ := login(t, ts, "family", "pw-family"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("logging in again: %d", resp.StatusCode)
	}
}

// A user limited to front reads front's buffer through their own
// connection — a snapshot when no live frame has come, a rewind — and the
// hub's permissions keep back's buffer out of their reach.
func TestLimitedUserReadsItsBuffer(t *testing.T) {
	h, pw := securedHub(t)
	admin, err := natsconn.Dial(h.ClientURL(), natsconn.DialOptions{Auth: natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	front, back := newCamera(t, admin, "front", 64, 48, 3, 0), newCamera(t, admin, "back", 64, 48, 3, 0)
	for range 5 {
		front.frame()
		back.frame()
	}
	front.report(wire.StateStreaming)
	back.report(wire.StateStreaming)
	s, ts := startWeb(t, Config{Login: &Login{NATS: h.ClientURL()}}, admin)
	testenv.Eventually(t, 10*time.Second, "the hub's camera list", func() bool { return s.known("front") && s.known("back") })
	if s.live.newest("front") != nil {
		t.Fatal("a live frame: the snapshot would not come from the buffer")
	}
	c := ts.Client()
	get := func(user, path string) answer {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		req.SetBasicAuth(user, "pw-"+user)
		return do(t, c, req)
	}
	a := get("frontonly", "/cams/front/snapshot.jpg")
	if a.status != http.StatusOK || a.header.Get(wire.HeaderSeq) != "5" || !bytes.Equal(a.body, front.pics[(5-1)%3]) {
		t.Fatalf("front's snapshot from the buffer: %d %s seq %s", a.status, a.header.Get("Content-Type"), a.header.Get(wire.HeaderSeq))
	}
	if a := get("frontonly", "/cams/back/snapshot.jpg"); a.status != http.StatusNotFound {
		t.Fatalf("back's snapshot for frontonly: %d", a.status)
	}
	// the rewind: front's five frames
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/stream?since=30s", nil)
	req.SetBasicAuth("frontonly", "pw-frontonly")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("rewind for frontonly: %d %s", resp.StatusCode, body)
	}
	// the stream is newest-frame-wins: frames stored at once may be
	// skipped, but the newest comes
	rr := newRecordReader(resp.Body)
	for rr.seq != 5 {
		id, err := rr.next()
		if err != nil || id != "front" {
			t.Fatalf("rewound frame after %d: %q, %v", rr.seq, id, err)
		}
	}
	if a := get("frontonly", "/cams/back/stream.mjpg?since=30s"); a.status != http.StatusNotFound {
		t.Fatalf("back's rewind for frontonly: %d", a.status)
	}
	// the hub decides, not only the web server: front's user's own
	// connection may not read back's buffer
	id, err := s.identifyBasic(t, "frontonly")
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	if _, err := s.snapshotOf(rctx, s.jsOf(id), "back"); err == nil {
		t.Fatal("front's user's connection read back's buffer")
	}
}

// identifyBasic logs user in as Basic credentials do.
func (s *Server) identifyBasic(t *testing.T, user string) (*identity, error) {
	req := httptest.NewRequest(http.MethodGet, "/api/cams", nil)
	req.SetBasicAuth(user, "pw-"+user)
	id, err := s.identify(req)
	if id != nil && id.release != nil {
		t.Cleanup(id.release)
	}
	return id, err
}

// A certificate in memory (a join token's web certificate) serves HTTPS
// as one from files does; both at once is a configuration error.
func TestCertificateInMemory(t *testing.T) {
	_, nc := startHub(t)
	certFile, keyFile, ca := writeCert(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Certificate: &cert, TLSCert: certFile, TLSKey: keyFile}, nc, quiet()); !errors.Is(err, ErrConfig) {
		t.Fatalf("a certificate from files and in memory: %v, want ErrConfig", err)
	}
	s, err := New(Config{Certificate: &cert}, nc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.TLS = s.tls.Clone()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca}}}
	resp, err := c.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("HTTPS with a certificate in memory: %d", resp.StatusCode)
	}
}
