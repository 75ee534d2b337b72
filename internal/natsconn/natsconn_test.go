package natsconn

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/testenv"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                 "nats://127.0.0.1:4222",
		"rtsp://admin:s3cret@10.0.0.5/stream":   "rtsp://REDACTED@10.0.0.5/stream",
		"nats://a:b@h1:4222,nats://tok@h2:4222": "nats://REDACTED@h1:4222,nats://REDACTED@h2:4222",
		"videotestsrc ! appsink":                "videotestsrc ! appsink",
		"/home/pi/clips/front@2x.mp4":           "/home/pi/clips/front@2x.mp4",
		"http://cam.local/mjpg?user=a&pwd=b":    "http://cam.local/mjpg?user=a&pwd=REDACTED",
		// Secrets in query strings, as IP cameras take them.
		"http://cam/videostream.cgi?user=admin&pwd=hunter2&res=1":        "http://cam/videostream.cgi?user=admin&pwd=REDACTED&res=1",
		"rtsp://10.0.0.5/stream?token=abc.def#x":                         "rtsp://10.0.0.5/stream?token=REDACTED#x",
		"https://c/s?Password=x&API_KEY=y&sig=z&auth=w&secret=v&pw=u":    "https://c/s?Password=REDACTED&API_KEY=REDACTED&sig=REDACTED&auth=REDACTED&secret=REDACTED&pw=REDACTED",
		"rtspsrc location=rtsp://c/s?access_token=t latency=0 ! appsink": "rtspsrc location=rtsp://c/s?access_token=REDACTED latency=0 ! appsink",
		"http://a/x?passwd=1,http://b/y?apikey=2":                        "http://a/x?passwd=REDACTED,http://b/y?apikey=REDACTED",
		"http://cam/mjpg?fps=5&size=640x480":                             "http://cam/mjpg?fps=5&size=640x480",
		"http://u:p@cam.local/path@with-at/video.mjpg":                   "http://REDACTED@cam.local/path@with-at/video.mjpg",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff(250*time.Millisecond, 5*time.Second)
	for i := 1; i <= 10; i++ {
		base := min(250*time.Millisecond<<(i-1), 5*time.Second)
		if d := b(i); d < base || d > base*12/10 {
			t.Fatalf("attempt %d: delay %v, want %v plus at most 20%% jitter", i, d, base)
		}
	}
}

// TestCloseWaitsForCallbacks: once Close returns, the connection's last
// log line ("disconnected from NATS", written by a nats.go callback on its
// own goroutine) is written, and nothing more comes; the connection's
// entry is gone, however it was closed.
func TestCloseWaitsForCallbacks(t *testing.T) {
	s := testenv.NATS(t, nil)
	for range 20 { // a callback left running would show in some of them
		var logs testenv.Buffer // written by nats.go's goroutine
		nc, err := Dial(s.ClientURL(), DialOptions{Name: "close-test"}, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		Close(nc)
		got := logs.String()
		if !strings.Contains(got, `msg="disconnected from NATS"`) {
			t.Fatalf("after Close, the log has no disconnection:\n%s", got)
		}
		if _, ok := lastCallback.Load(nc); ok {
			t.Fatal("Close left the connection's entry")
		}
	}
	// closed by nats.go's own Close, as the web viewer's per-user
	// connections are, with a closed handler of their own (Extra): that
	// handler runs, and the entry goes too
	closed := make(chan struct{})
	nc, err := Dial(s.ClientURL(), DialOptions{Name: "close-test", Extra: []nats.Option{nats.ClosedHandler(func(*nats.Conn) { close(closed) })}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	<-closed
	testenv.Eventually(t, 5*time.Second, "the entry of a connection closed by nc.Close gone", func() bool {
		_, ok := lastCallback.Load(nc)
		return !ok
	})
}
