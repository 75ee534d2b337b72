package wire_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// A frame a central hub sourced from a site's buffer carries JetStream's
// Nats-Stream-Source header, which JetStream refuses in a published
// message: a clip's copy of it must drop JetStream's headers and keep the
// camera's.
func TestClipHeaderOfSourcedFrame(t *testing.T) {
	srv := testenv.NATS(t, nil)
	nc := testenv.Conn(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mustStream := func(cfg jetstream.StreamConfig) jetstream.Stream {
		s, err := js.CreateStream(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mustStream(jetstream.StreamConfig{Name: "SITE", Subjects: []string{"cams.>"}})
	central := mustStream(jetstream.StreamConfig{Name: "CENTRAL", Sources: []*jetstream.StreamSource{{Name: "SITE"}}})
	mustStream(jetstream.StreamConfig{Name: "COPIES", Subjects: []string{"copies.>"}})

	if _, err := js.PublishMsg(ctx, testenv.FrameMsg("front", 7, time.Now(), []byte{0xff, 0xd8, 0xff, 0xd9}, 4, 4)); err != nil {
		t.Fatal(err)
	}
	var m *jetstream.RawStreamMsg
	testenv.Eventually(t, 10*time.Second, "the frame sourced into CENTRAL", func() bool {
		m, err = central.GetMsg(ctx, 1)
		return err == nil
	})
	if m.Header.Get("Nats-Stream-Source") == "" {
		t.Fatalf("the sourced frame has no Nats-Stream-Source header: %v", m.Header)
	}

	// copied as it is, JetStream refuses it: the test sees the problem
	raw := &nats.Msg{Subject: "copies.raw", Header: m.Header, Data: m.Data}
	var apiErr *jetstream.APIError
	if _, err := js.PublishMsg(ctx, raw); !errors.As(err, &apiErr) {
		t.Fatalf("publishing the raw copy: %v, want JetStream's refusal", err)
	}

	h := wire.ClipHeader(m.Header)
	h.Set(wire.HeaderMsgID, "ev.frames.1")
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "copies.clip", Header: h, Data: m.Data}); err != nil {
		t.Fatalf("publishing the clip's copy: %v", err)
	}
	f, err := wire.ParseFrame(h)
	if err != nil || f.Seq != 7 {
		t.Fatalf("the copy's frame headers: %+v, %v", f, err)
	}
	for k := range h {
		if k != wire.HeaderMsgID && len(k) > 5 && k[:5] == "Nats-" {
			t.Errorf("the copy keeps JetStream's header %s", k)
		}
	}
}
