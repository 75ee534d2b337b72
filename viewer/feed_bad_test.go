package viewer

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// The feed counts every frame and status message that is not camhub's as
// it arrives, whether or not the grid ever looks at it, and logs the first
// at once and then at most one line every badWarnEvery.
func TestFeedCountsBadMessages(t *testing.T) {
	s := testenv.NATS(t, nil)
	nc := testenv.Conn(t, s.ClientURL())
	feed, err := NewFeed([]string{"x"})
	if err != nil {
		t.Fatal(err)
	}
	var log testenv.Buffer
	feed.SetLogger(slog.New(slog.NewTextHandler(&log, nil)))
	if err := feed.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(feed.Close)
	pub := testenv.Conn(t, s.ClientURL())
	pic := cvtest.JPEG(t, cvtest.Red, 32, 24)
	noHeaders := &nats.Msg{Subject: wire.FramesSubject("x"), Data: pic}
	for _, m := range []*nats.Msg{
		testenv.FrameMsg("x", 1, time.Now(), []byte("not a JPEG"), 32, 24),
		testenv.FrameMsg("x", 2, time.Now(), pic[:len(pic)/2], 32, 24),
		testenv.FrameMsg("x", 3, time.Now(), nil, 32, 24),
		noHeaders,
		{Subject: wire.StatusSubject("x"), Data: []byte("{")},
		testenv.FrameMsg("x", 4, time.Now(), pic, 32, 24),
	} {
		publish(t, pub, m)
	}
	testenv.Eventually(t, 10*time.Second, "the bad messages counted", func() bool { return feed.Bad() == 5 })
	testenv.Eventually(t, 10*time.Second, "the good frame received", func() bool { return feed.slots["x"].received.Load() == 5 })
	if n := strings.Count(log.String(), "skipping messages that are not camhub's"); n != 1 {
		t.Errorf("%d warnings for 5 bad messages, want 1:\n%s", n, log.String())
	}
}
