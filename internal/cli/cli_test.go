package cli

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
	prev := time.Duration(0)
	for i := 1; i <= 10; i++ {
		d := b(i)
		if d < prev*9/10 || d > 6*time.Second || d < 250*time.Millisecond {
			t.Fatalf("attempt %d: delay %v after %v", i, d, prev)
		}
		prev = d
	}
	if prev < 5*time.Second {
		t.Fatalf("backoff never reached its maximum: %v", prev)
	}
}

func TestNewLogger(t *testing.T) {
	if _, err := NewLogger("loud"); err == nil {
		t.Fatal("accepted a bad level")
	}
	if _, err := NewLogger("debug"); err != nil {
		t.Fatal(err)
	}
}
