package notify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"time"

	"camhub/internal/natsconn"
	"camhub/internal/wire"
)

// ErrConfig is wrapped by every error of parsing or checking settings.
var ErrConfig = errors.New("bad notification settings")

// Targets is where notifications go: a pflag.Value that reads JSON (a YAML
// map in a config file becomes that), e.g.
//
//	{"webhooks":[{"url":"https://example.org/hook","header-file":"/etc/camhub/hook-auth"}],
//	 "ntfy":[{"url":"https://ntfy.sh/garden-cam","token-file":"/etc/camhub/ntfy-token","cams":["garden"]}]}
//
// A target without cams is for every camera. Secrets never appear here:
// only the names of the files or environment variables that hold them.
type Targets struct {
	Webhooks []Webhook `json:"webhooks,omitempty"`
	Ntfy     []Ntfy    `json:"ntfy,omitempty"`
}

// Webhook is an HTTP endpoint that gets a JSON POST per event.
type Webhook struct {
	URL string `json:"url"`
	// Cams, if set, are the only cameras notified.
	Cams []string `json:"cams,omitempty"`
	// End sends a second notification when the event ends, with its clip.
	End *bool `json:"end,omitempty"`
	// HeaderFile and HeaderEnv name a file or environment variable holding
	// extra request headers, "Name: value" a line (e.g. Authorization).
	HeaderFile string `json:"header-file,omitempty"`
	HeaderEnv  string `json:"header-env,omitempty"`
}

// Ntfy is an ntfy topic (https://ntfy.sh/<topic> or a server of one's own)
// that gets a message per event, with the event's picture attached.
type Ntfy struct {
	URL  string   `json:"url"`
	Cams []string `json:"cams,omitempty"`
	End  *bool    `json:"end,omitempty"`
	// TokenFile and TokenEnv name a file (first line) or environment
	// variable holding an access token, sent as "Authorization: Bearer".
	TokenFile string `json:"token-file,omitempty"`
	TokenEnv  string `json:"token-env,omitempty"`
	// Priority is ntfy's 1-5 (0: the server's default, 3).
	Priority int `json:"priority,omitempty"`
	// Tags are ntfy's tags (emoji short codes or words); default
	// "rotating_light,<camera id>".
	Tags []string `json:"tags,omitempty"`
}

// MaxTargets bounds how many targets settings may name.
const MaxTargets = 64

// Set implements pflag.Value.
func (t *Targets) Set(s string) error {
	v, err := ParseTargets([]byte(s))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// String implements pflag.Value.
func (t *Targets) String() string {
	if t == nil || len(t.Webhooks)+len(t.Ntfy) == 0 {
		return ""
	}
	b, _ := json.Marshal(t)
	return string(b)
}

// Type implements pflag.Value.
func (t *Targets) Type() string { return "json" }

// ParseTargets reads targets as JSON and checks them (not the secrets:
// those are read by Resolve, at start).
func ParseTargets(b []byte) (Targets, error) {
	var t Targets
	if len(bytes.TrimSpace(b)) == 0 {
		return t, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Targets{}, fmt.Errorf("%w: %v (want JSON such as {\"webhooks\":[{\"url\":\"https://example.org/hook\"}],\"ntfy\":[{\"url\":\"https://ntfy.sh/topic\",\"token-file\":\"/etc/camhub/ntfy-token\"}]}; secrets only in files or environment variables)", ErrConfig, err)
	}
	if dec.More() {
		return Targets{}, fmt.Errorf("%w: more after the JSON object", ErrConfig)
	}
	if err := t.validate(); err != nil {
		return Targets{}, err
	}
	return t, nil
}

func (t Targets) validate() error {
	if n := len(t.Webhooks) + len(t.Ntfy); n > MaxTargets {
		return fmt.Errorf("%w: %d targets, at most %d", ErrConfig, n, MaxTargets)
	}
	for i, w := range t.Webhooks {
		if err := checkTarget(w.URL, w.Cams, w.HeaderFile, w.HeaderEnv); err != nil {
			return fmt.Errorf("%w: webhook %d: %w", ErrConfig, i+1, err)
		}
	}
	for i, n := range t.Ntfy {
		if err := checkTarget(n.URL, n.Cams, n.TokenFile, n.TokenEnv); err != nil {
			return fmt.Errorf("%w: ntfy %d: %w", ErrConfig, i+1, err)
		}
		if n.Priority < 0 || n.Priority > 5 {
			return fmt.Errorf("%w: ntfy %d: priority %d: 1 to 5 (0: the server's default)", ErrConfig, i+1, n.Priority)
		}
		for _, tag := range n.Tags {
			if tag == "" || len(tag) > 64 || strings.ContainsAny(tag, ",\r\n") {
				return fmt.Errorf("%w: ntfy %d: tag %q: 1-64 characters, no commas", ErrConfig, i+1, tag)
			}
		}
	}
	return nil
}

// checkTarget checks a target's URL, cameras and secret source.
func checkTarget(raw string, cams []string, file, env string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want an http:// or https:// URL", natsconn.RedactURL(raw))
	}
	if u.User != nil {
		return fmt.Errorf("url %q: credentials do not go in URLs: use a header-file/token-file or header-env/token-env", natsconn.RedactURL(raw))
	}
	if err := wire.ValidateIDs(cams, 0); err != nil {
		return fmt.Errorf("cams: %w", err)
	}
	if file != "" && env != "" {
		return errors.New("give the secret's file or its environment variable, not both")
	}
	return nil
}

// Settings are how notifications are sent.
type Settings struct {
	// Timeout bounds each HTTP request.
	Timeout time.Duration
	// Retries is how many times a failed request is tried again, after
	// Backoff, then twice as long each time (at most a minute).
	Retries int
	Backoff time.Duration
	// Queue is how many notifications wait per target; more drop the
	// oldest (counted).
	Queue int
	// MaxAge: events stored longer ago than this when the notifier reads
	// them (a hub that was down) are not notified.
	MaxAge time.Duration
	// ThumbWait is how long to wait for an event's picture to be stored.
	ThumbWait time.Duration
	// End is the default of every target's End.
	End bool
}

// Defaults of Settings.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultRetries   = 4
	DefaultBackoff   = time.Second
	DefaultQueue     = 32
	DefaultMaxAge    = 10 * time.Minute
	DefaultThumbWait = 3 * time.Second
)

// DefaultSettings are the settings when nothing is set.
func DefaultSettings() Settings {
	return Settings{Timeout: DefaultTimeout, Retries: DefaultRetries, Backoff: DefaultBackoff, Queue: DefaultQueue,
		MaxAge: DefaultMaxAge, ThumbWait: DefaultThumbWait}
}

// Validate checks s.
func (s Settings) Validate() error {
	switch {
	case s.Timeout < 100*time.Millisecond || s.Timeout > 5*time.Minute:
		return fmt.Errorf("%w: timeout %v: 100ms to 5m", ErrConfig, s.Timeout)
	case s.Retries < 0 || s.Retries > 20:
		return fmt.Errorf("%w: retries %d: 0 to 20", ErrConfig, s.Retries)
	case s.Backoff < time.Millisecond || s.Backoff > time.Minute:
		return fmt.Errorf("%w: backoff %v: 1ms to 1m", ErrConfig, s.Backoff)
	case s.Queue < 1 || s.Queue > 10000:
		return fmt.Errorf("%w: queue %d: 1 to 10000", ErrConfig, s.Queue)
	case s.MaxAge < time.Second:
		return fmt.Errorf("%w: max-age %v: at least 1s", ErrConfig, s.MaxAge)
	case s.ThumbWait < 0 || s.ThumbWait > time.Minute:
		return fmt.Errorf("%w: thumb-wait %v: 0 to 1m", ErrConfig, s.ThumbWait)
	}
	return nil
}

// readSecret reads a secret from file (its first line) or env; "" if
// neither is set.
func readSecret(file, env string) (string, error) {
	switch {
	case file != "":
		return natsconn.ReadSecret(file)
	case env != "":
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty", env)
		}
		return v, nil
	}
	return "", nil
}

// readHeaders reads "Name: value" lines from file or env; nil if neither
// is set.
func readHeaders(file, env string) (http.Header, error) {
	var text string
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		text = string(b)
	case env != "":
		text = os.Getenv(env)
		if text == "" {
			return nil, fmt.Errorf("environment variable %s is empty", env)
		}
	default:
		return nil, nil
	}
	return ParseHeaders(text)
}

// ParseHeaders reads HTTP headers, "Name: value" a line; blank lines and
// lines starting with # are skipped. Errors never quote a value.
func ParseHeaders(text string) (http.Header, error) {
	h := http.Header{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || !validHeaderName(name) || strings.ContainsAny(value, "\x00\r\n") {
			return nil, fmt.Errorf("headers, line %d: not \"Name: value\"", n)
		}
		if len(h) >= 32 {
			return nil, errors.New("headers: at most 32")
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(name), value)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("headers: %w", err)
	}
	return h, nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
