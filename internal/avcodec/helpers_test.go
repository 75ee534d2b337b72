package avcodec

import (
	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// vtest is OpenCV's sample clip of people walking (768x576, 10 fps, 795
// frames), real footage from Debian's opencv-doc (scripts/deps.sh test).
const vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

func needVtest(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(vtest); err != nil {
		t.Fatalf("%v: install opencv-doc (scripts/deps.sh test)", err)
	}
}

// noLeaks fails the test if a native object of this package is open when
// it ends (after its deferred Closes), or a Mat it made (-tags matprofile).
func noLeaks(t testing.TB) {
	t.Helper()
	mats := openMats()
	t.Cleanup(func() {
		if Live() != 0 || openMats() != mats {
			t.Errorf("leak: %s; %d Mats open, %d before", LiveString(), openMats(), mats)
		}
	})
}

// draw paints picture i of a moving test pattern into m (w x h BGR): a
// gradient background, a disc and a box moving across it, and the frame
// number, so that consecutive pictures differ as a camera's do.
func draw(m *gocv.Mat, w, h, i int) {
	if m.Cols() != w || m.Rows() != h || m.Type() != gocv.MatTypeCV8UC3 {
		m.Close()
		*m = gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	}
	pix, _ := m.DataPtrUint8()
	for y := range h {
		for x := range w {
			p := (y*w + x) * 3
			pix[p] = uint8((x + 2*i) * 255 / w)
			pix[p+1] = uint8(y * 255 / h)
			pix[p+2] = uint8((x*x+y*y)*200/(w*w+h*h) + i)
		}
	}
	cx := (w/8 + i*w/80) % w
	gocv.Circle(m, image.Pt(cx, h/2), h/6, color.RGBA{255, 40, 0, 0}, -1)
	gocv.Rectangle(m, image.Rect(w/2, (h/4+i*2)%h, w/2+w/6, (h/4+i*2)%h+h/5), color.RGBA{0, 0, 255, 0}, -1)
	gocv.PutText(m, "camhub "+strconv.Itoa(i), image.Pt(w/10, h/5), gocv.FontHersheySimplex, float64(h)/200, color.RGBA{255, 255, 255, 0}, 2)
}

// compare returns the mean absolute difference per byte and the PSNR (dB)
// of b against a.
func compare(t testing.TB, a, b gocv.Mat) (mad, psnr float64) {
	t.Helper()
	if a.Rows() != b.Rows() || a.Cols() != b.Cols() || a.Type() != b.Type() {
		t.Fatalf("pictures differ in size or type: %dx%d %v and %dx%d %v", a.Cols(), a.Rows(), a.Type(), b.Cols(), b.Rows(), b.Type())
	}
	pa, err := a.DataPtrUint8()
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.DataPtrUint8()
	if err != nil {
		t.Fatal(err)
	}
	var sum, sq float64
	for i := range pa {
		d := float64(pa[i]) - float64(pb[i])
		sum += math.Abs(d)
		sq += d * d
	}
	n := float64(len(pa))
	if sq == 0 {
		return 0, math.Inf(1)
	}
	return sum / n, 10 * math.Log10(255*255/(sq/n))
}

// run runs a command (ffmpeg, ffprobe) and fails the test with its output
// if it fails.
func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, append([]string{"-hide_banner", "-v", "error"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// vtestFrames reads n frames of vtest at w x h, 8-bit BGR, with OpenCV.
func vtestFrames(t testing.TB, w, h, n int) []gocv.Mat {
	t.Helper()
	needVtest(t)
	vc, err := gocv.VideoCaptureFile(vtest)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	var out []gocv.Mat
	for len(out) < n && vc.Read(&img) {
		if img.Empty() {
			continue
		}
		m := gocv.NewMat()
		gocv.Resize(img, &m, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		out = append(out, m)
	}
	if len(out) < n {
		t.Fatalf("read %d frames of %s, want %d", len(out), vtest, n)
	}
	return out
}

func closeAll(ms []gocv.Mat) {
	for i := range ms {
		ms[i].Close()
	}
}

// frameTime is the capture time of picture i at fps.
func frameTime(i int, fps float64) time.Duration {
	return time.Duration(float64(i) / fps * float64(time.Second))
}
