package web

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"camhub/internal/testenv"
)

// Logging in through the page in a real browser: the page sends a visitor
// to the login form; a wrong password is refused there; the right one
// opens the grid with the user's cameras only; the session cookie is out
// of the page's reach (HttpOnly); logging out goes back to the form.
func TestPageLogin(t *testing.T) {
	e := startLoginWeb(t, Login{})
	ctx, problems := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(e.ts.URL)); err != nil {
		t.Fatal(err)
	}
	afterNav(t, ctx, "the login form", `location.pathname === '/login' && document.querySelector('form #user') !== null`)

	submit := func(user, password string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.SetValue(chromedp.CSS(`#user`), user, chromedp.NodeVisible),
			chromedp.SendKeys(chromedp.CSS(`#password`), password, chromedp.NodeVisible),
			chromedp.Submit(chromedp.CSS(`form`)),
		); err != nil {
			t.Fatal(err)
		}
	}
	submit("frontonly", "not-the-password")
	afterNav(t, ctx, "the login refused", `document.getElementById('login-error')?.textContent.includes('wrong user or password') ?? false`)
	if u := run(t, ctx, "the address", chromedp.Evaluate[string](`location.href`)); strings.Contains(u, "password") {
		t.Fatalf("the password is in the address: %s", u)
	}

	submit("frontonly", "pw-frontonly")
	afterNav(t, ctx, "the grid", `location.pathname === '/'`)
	waitShown(t, ctx, "front", 2)
	poll(t, ctx, "who is logged in", `document.getElementById('who').textContent === 'frontonly' && !document.getElementById('logout-form').hidden`)
	// a few polls of api/cams later, back has no tile
	n := shown(t, ctx, "front")
	waitShown(t, ctx, "front", n+10)
	if tiles := run(t, ctx, "tiles", chromedp.Evaluate[[]string](`[...document.querySelectorAll('.tile')].map(e => e.dataset.id)`)); len(tiles) != 1 || tiles[0] != "front" {
		t.Fatalf("tiles %v, want front alone", tiles)
	}
	if c := run(t, ctx, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); c != "" {
		t.Fatalf("the page can read the cookie %q: it must be HttpOnly", c)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#logout-form button`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	afterNav(t, ctx, "the login form after logging out", `location.pathname === '/login' && document.querySelector('#user') !== null`)
	testenv.Eventually(t, 10*time.Second, "the session to end at logout", func() bool { n, _ := e.s.gate.counts(); return n == 0 })

	for _, p := range problems() {
		// the refused login is answered 401, which Chromium reports
		if !strings.Contains(p, "401") {
			t.Errorf("browser problem: %s", p)
		}
	}
}

// afterNav waits until the JavaScript expression is true in the page that
// a navigation (a form's submission) is bringing: a page being replaced
// has no context to evaluate in, which is not yet, not an error.
func afterNav(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, what, func() bool {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		return err == nil && ok
	})
}

// Tools that cannot log in: ffmpeg reads the MJPEG stream with the
// user's name and password (answering the server's Basic challenge), curl
// with a Bearer token; without them, or for a camera the user may not
// see, nothing.
func TestToolsWithBasicAuth(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("no ffmpeg (scripts/deps.sh test, or apt-get install ffmpeg): %v", err)
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("no curl: %v", err)
	}
	e := startLoginWeb(t, Login{})
	host := strings.TrimPrefix(e.ts.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	grab := func(url, out string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
			"-i", url, "-frames:v", "2", "-c:v", "copy", "-f", "image2", filepath.Join(dir, out+"%d.jpg"))
		return cmd.CombinedOutput()
	}
	if out, err := grab("http://frontonly:pw-frontonly@"+host+"/cams/front/stream.mjpg", "front"); err != nil {
		t.Fatalf("ffmpeg with the user's password: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "front2.jpg"))
	if err != nil || !bytes.HasPrefix(data, []byte{0xff, 0xd8}) {
		t.Fatalf("ffmpeg's frame: %v", err)
	}
	for _, url := range []string{
		"http://" + host + "/cams/front/stream.mjpg",
		"http://frontonly:wrong@" + host + "/cams/front/stream.mjpg",
		"http://frontonly:pw-frontonly@" + host + "/cams/back/stream.mjpg",
	} {
		if out, err := grab(url, "refused"); err == nil {
			t.Fatalf("ffmpeg read %s: %s", url, out)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "refused*")); len(m) > 0 {
		t.Fatalf("ffmpeg wrote %v", m)
	}

	// curl: a snapshot with a Bearer token, the status of each refusal
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-H", "Authorization: Bearer frontonly.pw-frontonly", e.ts.URL + "/cams/front/snapshot.jpg"}, "200 image/jpeg"},
		{[]string{"-u", "frontonly:pw-frontonly", e.ts.URL + "/cams/front/snapshot.jpg"}, "200 image/jpeg"},
		{[]string{"-H", "Authorization: Bearer frontonly.wrong", e.ts.URL + "/cams/front/snapshot.jpg"}, "401 application/json"},
		{[]string{"-H", "Authorization: Bearer frontonly.pw-frontonly", e.ts.URL + "/cams/back/snapshot.jpg"}, "404 application/json"},
		{[]string{e.ts.URL + "/cams/front/snapshot.jpg"}, "401 application/json"},
	} {
		args := append([]string{"-s", "-o", os.DevNull, "-w", "%{http_code} %{content_type}"}, c.args...)
		out, err := exec.CommandContext(ctx, curl, args...).Output()
		if err != nil || string(out) != c.want {
			t.Errorf("curl %v: %q (%v), want %q", c.args, out, err, c.want)
		}
	}
}
