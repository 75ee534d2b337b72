package cli

import (
	"fmt"
	"image"
	"strconv"
	"strings"
)

// Size is a flag value written WxH, such as 640x480. Set accepts a
// positive width and height, within Min and Max where those are set.
type Size struct {
	image.Point
	Min, Max image.Point // zero: no bound
}

// ParseSize parses a size written WxH, such as 640x480: two positive
// integers, the x in either case, spaces around them ignored.
func ParseSize(s string) (image.Point, error) {
	ws, hs, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "x")
	var p image.Point
	var err error
	if ok {
		p.X, err = strconv.Atoi(ws)
		if err == nil {
			p.Y, err = strconv.Atoi(hs)
		}
	}
	if !ok || err != nil || p.X <= 0 || p.Y <= 0 {
		return image.Point{}, fmt.Errorf("size %q: want WIDTHxHEIGHT, such as 640x480", s)
	}
	return p, nil
}

// String implements pflag.Value.
func (s *Size) String() string { return strconv.Itoa(s.X) + "x" + strconv.Itoa(s.Y) }

// Type implements pflag.Value.
func (s *Size) Type() string { return "WxH" }

// Set implements pflag.Value.
func (s *Size) Set(v string) error {
	p, err := ParseSize(v)
	if err != nil {
		return err
	}
	if (s.Min != image.Point{} && (p.X < s.Min.X || p.Y < s.Min.Y)) || (s.Max != image.Point{} && (p.X > s.Max.X || p.Y > s.Max.Y)) {
		return fmt.Errorf("size %dx%d: want between %dx%d and %dx%d", p.X, p.Y, s.Min.X, s.Min.Y, s.Max.X, s.Max.Y)
	}
	s.Point = p
	return nil
}

// SplitList splits a comma-separated list flag (such as --cams a,b), given
// once or more, trimming spaces and dropping empty entries.
func SplitList(list []string) []string {
	var out []string
	for _, e := range list {
		for _, v := range strings.Split(e, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
