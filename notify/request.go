package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"camhub/internal/wire"
)

// WebhookBody is what a webhook receives: the event document (as in
// cams.<id>.events, docs/PROTOCOL.md) with "notification": "start" or
// "end".
type WebhookBody struct {
	Notification string `json:"notification"`
	wire.Event
}

// Notifications a webhook receives.
const (
	NotifyStart = "start"
	NotifyEnd   = "end"
)

// HeaderEvent names the event a notification is about, and whether it
// starts or ends it: "<event-id>.start" (the same on every try, for
// receivers that drop repeats).
const HeaderEvent = "Camhub-Event"

func webhookRequest(ctx context.Context, t *target, j job) (*http.Request, error) {
	kind := NotifyStart
	if j.end {
		kind = NotifyEnd
	}
	body, err := json.Marshal(WebhookBody{Notification: kind, Event: j.ev})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", t.host, err)
	}
	for k, v := range t.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEvent, j.ev.ID+"."+kind)
	return req, nil
}

// ntfyRequest is a message to an ntfy topic: with a picture, a PUT of the
// JPEG with the text in headers (ntfy's attachment upload); without, a
// POST of the text.
func ntfyRequest(ctx context.Context, t *target, j job, pic []byte) (*http.Request, error) {
	title, msg := text(j)
	method, body := http.MethodPost, []byte(msg)
	if pic != nil {
		method, body = http.MethodPut, pic
	}
	req, err := http.NewRequestWithContext(ctx, method, t.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("ntfy %s: %w", t.host, err)
	}
	req.Header.Set("Title", title)
	tags := t.tags
	if len(tags) == 0 {
		tags = []string{"rotating_light", j.ev.Camera}
		if j.end {
			tags[0] = "white_check_mark"
		}
	}
	req.Header.Set("Tags", strings.Join(tags, ","))
	if t.priority > 0 {
		req.Header.Set("Priority", strconv.Itoa(t.priority))
	}
	if pic != nil {
		req.Header.Set("Message", msg)
		req.Header.Set("Filename", j.ev.ID+".jpg")
		req.Header.Set("Content-Type", wire.ContentTypeJPEG)
	} else {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	return req, nil
}

// text is a notification's title and message, plain ASCII (they travel in
// HTTP headers).
func text(j job) (title, msg string) {
	e := j.ev
	const layout = "2006-01-02 15:04:05 UTC"
	if !j.end {
		return "Motion: " + e.Camera, fmt.Sprintf("Motion on %s at %s (%.1f%% of the picture). Event %s.",
			e.Camera, e.Start.UTC().Format(layout), 100*e.Score, e.ID)
	}
	d := e.End.Sub(e.Start).Round(time.Second)
	return "Motion over: " + e.Camera, fmt.Sprintf("Motion on %s from %s for %v (up to %.1f%% of the picture). Clip: %d frames, %s. Event %s.",
		e.Camera, e.Start.UTC().Format(layout), d, 100*e.Score, e.Clip.Frames, byteSize(e.Clip.Bytes), e.ID)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// drain reads a little of an answer's body so the connection can be
// used again.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
}
