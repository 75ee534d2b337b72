package main

import (
	"errors"
	"strings"
	"time"
)

// timeValue is a flag holding an RFC 3339 time; zero if not set.
type timeValue struct{ t time.Time }

// String implements pflag.Value.
func (v *timeValue) String() string {
	if v.t.IsZero() {
		return ""
	}
	return v.t.Format(time.RFC3339Nano)
}

// Set implements pflag.Value.
func (v *timeValue) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return errors.New("not an RFC 3339 time such as 2026-11-24T08:00:05Z or 2026-11-24T09:00:05.5+01:00")
	}
	v.t = t
	return nil
}

// Type implements pflag.Value.
func (v *timeValue) Type() string { return "time" }

// clipFormat is the format of exported clips: "mp4" or "avi".
type clipFormat string

// String implements pflag.Value.
func (f *clipFormat) String() string { return string(*f) }

// Set implements pflag.Value.
func (f *clipFormat) Set(s string) error {
	switch v := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), ".")); v {
	case "mp4", "avi":
		*f = clipFormat(v)
		return nil
	}
	return errors.New("want mp4 or avi")
}

// Type implements pflag.Value.
func (f *clipFormat) Type() string { return "format" }
