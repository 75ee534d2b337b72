package motion

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Point is a point of the picture in fractions of its width and height
// (0,0 top left, 1,1 bottom right), so a mask fits any resolution.
type Point struct{ X, Y float64 }

// Polygon is an area of the picture.
type Polygon []Point

// MaxPolygons and MaxPoints bound a mask spec.
const (
	MaxPolygons = 32
	MaxPoints   = 64
)

// ErrMask is wrapped by every error of ParseMask.
var ErrMask = errors.New("bad mask")

// ParseMask parses a mask spec: polygons separated by ";", each three or
// more points "x,y" separated by spaces, in fractions of the picture:
//
//	0,0 1,0 1,0.1 0,0.1; 0.8,0.8 1,0.8 1,1 0.8,1
//
// masks the top tenth and the bottom right corner. Motion inside a mask
// is ignored. An empty spec is no mask.
func ParseMask(spec string) ([]Polygon, error) {
	var ps []Polygon
	for part := range strings.SplitSeq(spec, ";") {
		fields := strings.Fields(part)
		if len(fields) == 0 {
			continue
		}
		if len(ps) == MaxPolygons {
			return nil, fmt.Errorf("%w: more than %d polygons", ErrMask, MaxPolygons)
		}
		if len(fields) < 3 || len(fields) > MaxPoints {
			return nil, fmt.Errorf("%w: polygon %q: 3 to %d points x,y", ErrMask, strings.TrimSpace(part), MaxPoints)
		}
		p := make(Polygon, 0, len(fields))
		for _, f := range fields {
			xs, ys, ok := strings.Cut(f, ",")
			x, errx := strconv.ParseFloat(xs, 64)
			y, erry := strconv.ParseFloat(ys, 64)
			if !ok || errx != nil || erry != nil || !unit(x) || !unit(y) {
				return nil, fmt.Errorf("%w: point %q: want x,y with x and y from 0 to 1 (fractions of the picture)", ErrMask, f)
			}
			p = append(p, Point{x, y})
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func unit(v float64) bool { return v >= 0 && v <= 1 && !math.IsNaN(v) }

// FormatMask writes polygons as ParseMask reads them.
func FormatMask(ps []Polygon) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("; ")
		}
		for j, pt := range p {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatFloat(pt.X, 'g', -1, 64))
			b.WriteByte(',')
			b.WriteString(strconv.FormatFloat(pt.Y, 'g', -1, 64))
		}
	}
	return b.String()
}
