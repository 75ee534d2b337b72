package notify

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// Flags are the notifier's settings as command-line flags (and so, through
// package config, YAML keys and CAMHUB_* variables).
type Flags struct {
	Targets Targets
	// Webhooks and Ntfy are targets for every camera given as plain URLs.
	Webhooks []string
	Ntfy     []string
	// NtfyTokenFile is the token file of the Ntfy URLs.
	NtfyTokenFile string
	Settings      Settings
}

// Add defines the flags on fs.
func (f *Flags) Add(fs *pflag.FlagSet) {
	d := DefaultSettings()
	fs.Var(&f.Targets, "notify", `notification targets as JSON (a map in YAML): {"webhooks":[{"url":"https://example.org/hook","header-file":"/etc/camhub/hook-headers","cams":["front"]}],`+
		`"ntfy":[{"url":"https://ntfy.sh/TOPIC","token-file":"/etc/camhub/ntfy-token","priority":4}]}; per target: cams (default every camera), end, and the secret's file or environment variable (header-file/header-env, token-file/token-env)`)
	fs.StringSliceVar(&f.Webhooks, "notify-webhook", nil, "POST every event as JSON to these `URLs` (comma-separated; every camera; headers with secrets: use --notify)")
	fs.StringSliceVar(&f.Ntfy, "notify-ntfy", nil, "send every event, with its picture, to these ntfy topic `URLs` (comma-separated; every camera)")
	fs.StringVar(&f.NtfyTokenFile, "notify-ntfy-token-file", "", "`file` holding the access token of the --notify-ntfy topics (first line)")
	fs.DurationVar(&f.Settings.Timeout, "notify-timeout", d.Timeout, "time limit of each notification request")
	fs.IntVar(&f.Settings.Retries, "notify-retries", d.Retries, "tries again a failed notification this many times, waiting --notify-backoff, then twice as long each time")
	fs.DurationVar(&f.Settings.Backoff, "notify-backoff", d.Backoff, "first wait before trying a failed notification again")
	fs.IntVar(&f.Settings.Queue, "notify-queue", d.Queue, "notifications waiting per target, at most: more drop the oldest (counted)")
	fs.DurationVar(&f.Settings.MaxAge, "notify-max-age", d.MaxAge, "events older than this when read (the hub was down) are not notified")
	fs.DurationVar(&f.Settings.ThumbWait, "notify-thumb-wait", d.ThumbWait, "wait at most this long for an event's picture before sending without it")
	fs.BoolVar(&f.Settings.End, "notify-end", false, "also notify when an event ends, with its clip (a target's end overrides it)")
}

// Config returns the notifier's configuration as the flags say, checked
// (secrets are read by New).
func (f *Flags) Config() (Config, error) {
	t := f.Targets
	for _, u := range f.Webhooks {
		t.Webhooks = append(t.Webhooks, Webhook{URL: u})
	}
	for _, u := range f.Ntfy {
		t.Ntfy = append(t.Ntfy, Ntfy{URL: u, TokenFile: f.NtfyTokenFile})
	}
	if f.NtfyTokenFile != "" && len(f.Ntfy) == 0 {
		return Config{}, fmt.Errorf("%w: notify-ntfy-token-file without notify-ntfy", ErrConfig)
	}
	if err := t.validate(); err != nil {
		return Config{}, err
	}
	if err := f.Settings.Validate(); err != nil {
		return Config{}, err
	}
	return Config{Targets: t, Settings: f.Settings}, nil
}

// Config is a notifier's configuration.
type Config struct {
	Targets  Targets
	Settings Settings
}

// Empty reports whether c notifies nobody.
func (c Config) Empty() bool { return len(c.Targets.Webhooks)+len(c.Targets.Ntfy) == 0 }

// maxBackoff bounds the wait between tries.
const maxBackoff = time.Minute
