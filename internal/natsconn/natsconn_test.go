package natsconn

import (
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                        "nats://127.0.0.1:4222",
		"rtsp://admin:s3cret@10.0.0.5/stream":          "rtsp://REDACTED@10.0.0.5/stream",
		"nats://a:b@h1:4222,nats://tok@h2:4222":        "nats://REDACTED@h1:4222,nats://REDACTED@h2:4222",
		"videotestsrc ! appsink":                       "videotestsrc ! appsink",
		"/home/pi/clips/front@2x.mp4":                  "/home/pi/clips/front@2x.mp4",
		"http://cam.local/mjpg?user=a&pwd=b":           "http://cam.local/mjpg?user=a&pwd=b",
		"http://u:p@cam.local/path@with-at/video.mjpg": "http://REDACTED@cam.local/path@with-at/video.mjpg",
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
