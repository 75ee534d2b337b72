package notify

import (
	"strings"
	"testing"
)

// Settings come from files, the environment and the command line: any
// input is an error or valid targets, never a crash, and valid targets
// survive a round trip.
func FuzzParseTargets(f *testing.F) {
	for _, s := range []string{
		``,
		`{}`,
		`{"webhooks":[{"url":"https://example.org/hook","header-file":"/etc/camhub/h","cams":["front"],"end":true}]}`,
		`{"ntfy":[{"url":"https://ntfy.sh/topic","token-env":"NTFY","priority":4,"tags":["warning","cam"]}]}`,
		`{"ntfy":[{"url":"https://user:pw@ntfy.sh/topic"}]}`,
		`{"webhooks":[{"url":"ftp://x"}]}`,
		`{"webhooks":[{"url":"http://x","token":"inline"}]}`,
		`{"webhooks":[{"url":"http://x","cams":["a.b"]}]}`,
		`{"ntfy":[{"url":"http://x","priority":9}]}`,
		`{"webhooks":[]} {}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseTargets([]byte(s))
		if err != nil {
			return
		}
		again, err := ParseTargets([]byte(v.String()))
		if err != nil {
			t.Fatalf("%q parsed, its String %q did not: %v", s, v.String(), err)
		}
		if again.String() != v.String() {
			t.Fatalf("round trip: %q != %q", again.String(), v.String())
		}
		for _, w := range v.Webhooks {
			if strings.Contains(w.URL, "@") && strings.Contains(w.URL, "://") && strings.Index(w.URL, "@") < strings.IndexAny(w.URL+"/", "/?#") {
				t.Fatalf("a URL with credentials was accepted: %q", w.URL)
			}
		}
	})
}

// A header file is outside input: any text is an error (which never
// quotes it: it holds secrets) or headers without line breaks.
func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{
		"Authorization: Bearer x\n",
		"# comment\n\nX-A: 1\nX-B:2\r\n",
		"no colon\n",
		"Bad Name: v\n",
		": empty\n",
		"X: a\x00b\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHeaders(s)
		if err != nil {
			if len(s) > 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("the error quotes the input: %v", err)
			}
			return
		}
		for k, vs := range h {
			if k == "" || strings.ContainsAny(k, " :\r\n") {
				t.Fatalf("header name %q", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("header %s: value %q", k, v)
				}
			}
		}
	})
}
