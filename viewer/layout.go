package viewer

import (
	"image"
	"math"

	"gocv.io/x/gocv"
)

// Gap is the space in pixels around and between the tiles of the grid.
const Gap = 4

// refAspect is the picture shape Layout optimises for: most cameras are
// 4:3 or 16:9, and 3:2 lies between them.
const refAspect = 3.0 / 2.0

// Layout divides a canvas of the given size into n tiles: a grid of cols
// columns and ceil(n/cols) rows, separated and surrounded by Gap pixels. It
// picks cols to make a picture of refAspect as large as possible in each
// tile: on a 16:9 canvas that is cols = ceil(sqrt(n)); a narrower canvas
// gets fewer columns, a wider one more. An incomplete last row is centred. The tiles are
// in reading order. On a canvas too small to hold n tiles some tiles are
// empty rectangles.
func Layout(n int, canvas image.Point) []image.Rectangle {
	if n <= 0 || canvas.X <= 0 || canvas.Y <= 0 {
		return nil
	}
	bestCols, bestScore := 1, -1.0
	for cols := 1; cols <= n; cols++ {
		rows := (n + cols - 1) / cols
		if cols > 1 && (n+cols-2)/(cols-1) == rows {
			continue // same rows as with one column fewer: only narrower tiles
		}
		w := float64(canvas.X-(cols+1)*Gap) / float64(cols)
		h := float64(canvas.Y-(rows+1)*Gap) / float64(rows)
		// the width of a refAspect picture fitted into a w×h tile
		score := math.Min(w, h*refAspect)
		if score > bestScore {
			bestCols, bestScore = cols, score
		}
	}
	cols := bestCols
	rows := (n + cols - 1) / cols
	tw := max((canvas.X-(cols+1)*Gap)/cols, 0)
	th := max((canvas.Y-(rows+1)*Gap)/rows, 0)
	// centre the grid: the division leaves a few pixels over
	x0 := (canvas.X - cols*tw - (cols-1)*Gap) / 2
	y0 := (canvas.Y - rows*th - (rows-1)*Gap) / 2

	tiles := make([]image.Rectangle, n)
	for i := range tiles {
		r, c := i/cols, i%cols
		x := x0
		if last := n - r*cols; last < cols {
			// the incomplete last row, centred
			x += (cols - last) * (tw + Gap) / 2
		}
		p := image.Pt(x+c*(tw+Gap), y0+r*(th+Gap))
		tiles[i] = image.Rectangle{Min: p, Max: p.Add(image.Pt(tw, th))}.Intersect(image.Rectangle{Max: canvas})
	}
	return tiles
}

// Fit returns the largest size of a picture of size pic that fits into box
// with its aspect ratio kept (letterboxed). It is at least 1×1 when box is
// not empty.
func Fit(pic, box image.Point) image.Point {
	if pic.X <= 0 || pic.Y <= 0 || box.X <= 0 || box.Y <= 0 {
		return image.Point{}
	}
	// compare box.X/pic.X with box.Y/pic.Y without rounding
	if box.X*pic.Y <= box.Y*pic.X {
		return image.Pt(box.X, max(1, pic.Y*box.X/pic.X))
	}
	return image.Pt(max(1, pic.X*box.Y/pic.Y), box.Y)
}

// Centre returns the rectangle of the given size centred in r.
func Centre(size image.Point, r image.Rectangle) image.Rectangle {
	min := r.Min.Add(r.Size().Sub(size).Div(2))
	return image.Rectangle{Min: min, Max: min.Add(size)}
}

// DecodeFlag chooses how to decode a JPEG of size frame that will be shown
// at size shown: libjpeg can decode at 1/2, 1/4 or 1/8 of the size at a
// fraction of the cost, so the largest reduction that still gives at least
// shown's width and height is taken. It returns the flag for gocv.IMDecode
// and the reduction factor (1, 2, 4 or 8).
func DecodeFlag(frame, shown image.Point) (gocv.IMReadFlag, int) {
	for _, r := range []struct {
		flag gocv.IMReadFlag
		k    int
	}{
		{gocv.IMReadReducedColor8, 8},
		{gocv.IMReadReducedColor4, 4},
		{gocv.IMReadReducedColor2, 2},
	} {
		if shown.X > 0 && shown.Y > 0 && shown.X*r.k <= frame.X && shown.Y*r.k <= frame.Y {
			return r.flag, r.k
		}
	}
	return gocv.IMReadColor, 1
}
