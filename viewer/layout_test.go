package viewer

import (
	"fmt"
	"image"
	"testing"

	"gocv.io/x/gocv"
)

func TestLayout(t *testing.T) {
	hd := image.Pt(1280, 720)
	for _, tc := range []struct {
		n          int
		canvas     image.Point
		cols, rows int
	}{
		{1, hd, 1, 1},
		{2, hd, 2, 1},
		{3, hd, 2, 2},
		{4, hd, 2, 2},
		{5, hd, 3, 2},
		{9, hd, 3, 3},
		{16, hd, 4, 4},
		{2, image.Pt(720, 1280), 1, 2}, // portrait: stacked
		{3, image.Pt(720, 1280), 1, 3},
		{4, image.Pt(1920, 400), 4, 1}, // a wide strip: one row
		{64, image.Pt(160, 120), 8, 8},
	} {
		t.Run(fmt.Sprintf("%d on %v", tc.n, tc.canvas), func(t *testing.T) {
			tiles := Layout(tc.n, tc.canvas)
			if len(tiles) != tc.n {
				t.Fatalf("%d tiles, want %d", len(tiles), tc.n)
			}
			bounds := image.Rectangle{Max: tc.canvas}
			xs, ys := map[int]bool{}, map[int]bool{}
			for i, r := range tiles {
				if r.Empty() || !r.In(bounds) {
					t.Errorf("tile %d %v is empty or outside the canvas %v", i, r, bounds)
				}
				if r.Size() != tiles[0].Size() {
					t.Errorf("tile %d is %v, tile 0 %v: want equal tiles", i, r.Size(), tiles[0].Size())
				}
				for j := range i {
					if r.Overlaps(tiles[j]) {
						t.Errorf("tiles %d %v and %d %v overlap", i, r, j, tiles[j])
					}
				}
				// a gap between neighbours and around the grid
				if r.Min.X < Gap || r.Min.Y < Gap || r.Max.X > tc.canvas.X-Gap || r.Max.Y > tc.canvas.Y-Gap {
					t.Errorf("tile %d %v touches the canvas edge", i, r)
				}
				xs[r.Min.X], ys[r.Min.Y] = true, true
				if i > 0 && r.Min.Y == tiles[i-1].Min.Y && r.Min.X-tiles[i-1].Max.X < Gap {
					t.Errorf("tiles %d and %d: no gap", i-1, i)
				}
			}
			if len(ys) != tc.rows || tiles[0].Min.Y >= tiles[len(tiles)-1].Min.Y && tc.rows > 1 {
				t.Errorf("%d rows, want %d (tiles %v)", len(ys), tc.rows, tiles)
			}
			// the full first row has cols tiles
			var first int
			for _, r := range tiles {
				if r.Min.Y == tiles[0].Min.Y {
					first++
				}
			}
			if first != tc.cols {
				t.Errorf("%d columns, want %d (tiles %v)", first, tc.cols, tiles)
			}
			// the tiles use the canvas: little is left over around them
			used := tiles[0].Dx() * tiles[0].Dy() * tc.n
			if free := tc.canvas.X*tc.canvas.Y - used; tc.n > 1 && tc.n <= 16 && tc.n == tc.cols*tc.rows &&
				float64(free) > 0.2*float64(tc.canvas.X*tc.canvas.Y) {
				t.Errorf("a full grid leaves %d of %d pixels unused", free, tc.canvas.X*tc.canvas.Y)
			}
		})
	}
	if Layout(0, hd) != nil {
		t.Error("Layout(0) should be empty")
	}
}

// An incomplete last row is centred.
func TestLayoutCentresLastRow(t *testing.T) {
	tiles := Layout(3, image.Pt(1280, 720))
	last := tiles[2]
	left, right := last.Min.X, 1280-last.Max.X
	if d := left - right; d < -2 || d > 2 {
		t.Fatalf("last tile %v is not centred (%d left, %d right)", last, left, right)
	}
}

func TestFit(t *testing.T) {
	for _, tc := range []struct{ pic, box, want image.Point }{
		{image.Pt(640, 480), image.Pt(640, 480), image.Pt(640, 480)},
		{image.Pt(640, 480), image.Pt(1280, 720), image.Pt(960, 720)},  // pillarbox
		{image.Pt(1920, 1080), image.Pt(636, 712), image.Pt(636, 357)}, // letterbox
		{image.Pt(640, 480), image.Pt(320, 240), image.Pt(320, 240)},
		{image.Pt(4000, 10), image.Pt(100, 100), image.Pt(100, 1)}, // never 0
		{image.Pt(0, 480), image.Pt(100, 100), image.Point{}},
		{image.Pt(640, 480), image.Point{}, image.Point{}},
	} {
		if got := Fit(tc.pic, tc.box); got != tc.want {
			t.Errorf("Fit(%v, %v) = %v, want %v", tc.pic, tc.box, got, tc.want)
		}
	}
}

func TestDecodeFlag(t *testing.T) {
	vga := image.Pt(640, 480)
	for _, tc := range []struct {
		frame, shown image.Point
		flag         gocv.IMReadFlag
		k            int
	}{
		{vga, vga, gocv.IMReadColor, 1},
		{vga, image.Pt(960, 720), gocv.IMReadColor, 1}, // enlarged
		{vga, image.Pt(321, 241), gocv.IMReadColor, 1}, // just over half
		{vga, image.Pt(320, 240), gocv.IMReadReducedColor2, 2},
		{vga, image.Pt(161, 120), gocv.IMReadReducedColor2, 2},
		{vga, image.Pt(160, 120), gocv.IMReadReducedColor4, 4},
		{vga, image.Pt(80, 60), gocv.IMReadReducedColor8, 8},
		{vga, image.Pt(10, 8), gocv.IMReadReducedColor8, 8}, // 1/8 is the most libjpeg does
		{image.Pt(1920, 1080), image.Pt(636, 357), gocv.IMReadReducedColor2, 2},
		{image.Pt(1920, 1080), image.Pt(310, 174), gocv.IMReadReducedColor4, 4},
		{image.Pt(1920, 1080), image.Pt(200, 600), gocv.IMReadColor, 1}, // height rules
		{vga, image.Point{}, gocv.IMReadColor, 1},
	} {
		flag, k := DecodeFlag(tc.frame, tc.shown)
		if flag != tc.flag || k != tc.k {
			t.Errorf("DecodeFlag(%v, %v) = %v, %d; want %v, %d", tc.frame, tc.shown, flag, k, tc.flag, tc.k)
		}
	}
}
