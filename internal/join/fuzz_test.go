package join_test

import (
	"strings"
	"testing"

	"camhub/internal/join"
)

// Parse takes text pasted by people and files from anywhere: it returns a
// token or an error, never panics, and a token it returns survives
// encoding again.
func FuzzParse(f *testing.F) {
	tok := valid(f)
	s, err := tok.Encode()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{s, s[:len(s)/2], "camhub1.", "camhub1.e30", "camhub1.eyJ2IjoxfQ", "camhub2.x", "", "camhub1.bnVsbA"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tok, err := join.Parse(in)
		if err != nil {
			if strings.Contains(err.Error(), in) && len(in) > 16 {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		again, err := tok.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := join.Parse(again); err != nil {
			t.Fatalf("a parsed token does not parse again: %v", err)
		}
	})
}
