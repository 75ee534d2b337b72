package motion

import (
	"encoding/json"
	"errors"
	"testing"
)

func FuzzParseMask(f *testing.F) {
	for _, s := range []string{"", "0,0 1,0 1,1", "0,0.85 1,0.85 1,1 0,1; 0,0 0.1,0 0.1,0.1", "0,0 1,0", "2,0 1,0 1,1",
		"a,b c,d e,f", ";;", "0,0 1,0 1,1;", "NaN,0 1,0 1,1", "1e-3,0 1,0 1,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ps, err := ParseMask(spec)
		if err != nil {
			if !errors.Is(err, ErrMask) {
				t.Fatalf("%q: error %v does not wrap ErrMask", spec, err)
			}
			return
		}
		for _, p := range ps {
			if len(p) < 3 || len(p) > MaxPoints {
				t.Fatalf("%q: a polygon of %d points", spec, len(p))
			}
			for _, q := range p {
				if !unit(q.X) || !unit(q.Y) {
					t.Fatalf("%q: point %v outside the picture", spec, q)
				}
			}
		}
		// what FormatMask writes parses back to the same
		again, err := ParseMask(FormatMask(ps))
		if err != nil || len(again) != len(ps) {
			t.Fatalf("%q: FormatMask %q parses to %v, %v", spec, FormatMask(ps), again, err)
		}
	})
}

func FuzzParseCameraSettings(f *testing.F) {
	for _, s := range []string{`{}`, `{"front":{"threshold":30,"mask":"0,0 1,0 1,0.1 0,0.1"}}`, `{"door":{"enabled":false}}`,
		`{"a":{"off-delay":"10s","pre-roll":"2s","post-roll":3,"fps":2,"on-frames":3,"min-area":0.01}}`,
		`{"a b":{}}`, `{"a":{"bogus":1}}`, `{"a":{"fps":0}}`, `[]`, `{"a":{}} {}`, `{"a":{"mask":"x"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseCameraSettings(b)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("%q: error %v does not wrap ErrConfig", b, err)
			}
			return
		}
		for id, s := range m {
			c, err := s.Apply(DefaultCamera())
			if err != nil {
				t.Fatalf("%q: camera %q accepted but does not apply: %v", b, id, err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		}
		// it survives a round trip through the flag's String
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseCameraSettings(out); err != nil {
			t.Fatalf("%q: written as %s, which does not parse: %v", b, out, err)
		}
	})
}
