package h264

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixture is 16 frames of OpenCV's vtest clip (Debian's opencv-doc), two
// GOPs of 8, made with
//
//	ffmpeg -i /usr/share/doc/opencv-doc/examples/data/vtest.avi -frames:v 16 -vf scale=176:144 \
//	  -c:v libx264 -preset ultrafast -tune zerolatency -profile:v baseline -g 8 -bf 0 -crf 32 \
//	  -f h264 testdata/vtest-176x144.h264
const fixture = "testdata/vtest-176x144.h264"

func fixtureAUs(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	aus, err := AccessUnits(b)
	if err != nil {
		t.Fatal(err)
	}
	return aus
}

// ffmpeg runs ffmpeg (a test dependency: scripts/deps.sh test) and fails
// the test with its output if it fails.
func ffmpeg(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"-hide_banner", "-v", "error"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestFixtureAccessUnits(t *testing.T) {
	aus := fixtureAUs(t)
	if len(aus) != 16 {
		t.Fatalf("%d access units, want 16", len(aus))
	}
	// ffprobe's packet sizes are the same access units
	probe := ffmpeg(t, "ffprobe", "-show_entries", "packet=size,flags", "-of", "csv=p=0", fixture)
	lines := strings.Fields(probe)
	if len(lines) != len(aus) {
		t.Fatalf("ffprobe sees %d packets, AccessUnits %d", len(lines), len(aus))
	}
	for i, au := range aus {
		size, flags, _ := strings.Cut(lines[i], ",")
		if strconv.Itoa(len(au)) != size {
			t.Errorf("access unit %d: %d bytes, ffprobe says %s", i, len(au), size)
		}
		key := i%8 == 0
		if IsKeyframe(au) != key || strings.HasPrefix(flags, "K") != key {
			t.Errorf("access unit %d: IsKeyframe %v, ffprobe flags %q, want key=%v", i, IsKeyframe(au), flags, key)
		}
		sps, pps, err := Params(au)
		if err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
		if (sps != nil) != key || (pps != nil) != key {
			t.Errorf("access unit %d: SPS %x PPS %x, keyframe %v", i, sps, pps, key)
		}
		if key {
			s, err := ParseSPS(sps)
			if err != nil {
				t.Fatal(err)
			}
			// x264 writes constraint_set0 and set1 for baseline; level 1.0
			if want := (SPS{Profile: 66, Constraints: 0xC0, Level: 10, Width: 176, Height: 144}); s != want {
				t.Errorf("SPS %+v, want %+v", s, want)
			}
			if c, _ := CodecString(sps); c != "avc1.42C00A" {
				t.Errorf("codec %q", c)
			}
		}
	}
}

func TestSplitJoin(t *testing.T) {
	for i, au := range fixtureAUs(t) {
		nalus, err := Split(au)
		if err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
		// x264 writes 4-byte start codes before parameter sets and the
		// first slice, 3-byte ones elsewhere: Join writes 4-byte ones,
		// so compare the NAL units
		again, err := Split(Join(nalus))
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(nalus) {
			t.Fatalf("access unit %d: %d NAL units, after Join %d", i, len(nalus), len(again))
		}
		for j := range nalus {
			if !bytes.Equal(nalus[j], again[j]) {
				t.Errorf("access unit %d NAL unit %d differs after Join", i, j)
			}
		}
		// two slices a picture (x264's sliced threads on two cores)
		wantTypes := "1 1"
		if i%8 == 0 {
			wantTypes = "7 8 5 5"
			if i == 0 {
				wantTypes = "7 8 6 5 5" // x264's SEI with its settings, first only
			}
		}
		var types []string
		for _, n := range nalus {
			types = append(types, strconv.Itoa(int(Type(n))))
		}
		if got := strings.Join(types, " "); got != wantTypes {
			t.Errorf("access unit %d: NAL unit types %s, want %s", i, got, wantTypes)
		}
	}

	// start codes of 3 and 4 bytes, leading and trailing zeros
	got, err := Split([]byte{0, 0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 0, 1, 0x41, 0x9A, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[0], []byte{0x09, 0xF0}) || !bytes.Equal(got[1], []byte{0x65, 0x88}) || !bytes.Equal(got[2], []byte{0x41, 0x9A}) {
		t.Errorf("split %x", got)
	}
}

func TestBadInput(t *testing.T) {
	aus := fixtureAUs(t)
	for name, c := range map[string]struct {
		in   []byte
		want error
	}{
		"nil":               {nil, ErrEmpty},
		"no start code":     {[]byte("hello, not video"), ErrNoStartCode},
		"JPEG":              {[]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F'}, ErrNoStartCode},
		"start code only":   {[]byte{0, 0, 0, 1}, ErrEmpty},
		"zeros":             {make([]byte, 100), ErrNoStartCode},
		"empty NAL units":   {[]byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0}, ErrEmpty},
		"too large":         {append([]byte{0, 0, 1, 0x65}, make([]byte, MaxAccessUnitSize)...), ErrTooLarge},
		"too many NALUs":    {bytes.Repeat([]byte{0, 0, 1, 0x41, 0x9A}, MaxNALUs+1), ErrTooLarge},
		"starts mid-stream": {aus[0][5:], ErrNoStartCode},
	} {
		_, err := Split(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Split: %v, want %v", name, err, c.want)
		}
		if IsKeyframe(c.in) {
			t.Errorf("%s: a keyframe", name)
		}
		if _, _, err := Params(c.in); err == nil {
			t.Errorf("%s: Params without an error", name)
		}
		if _, err := EnsureParams(c.in, nil, nil); err == nil {
			t.Errorf("%s: EnsureParams without an error", name)
		}
	}
	// a keyframe cut short is still split: the decoder judges the slice
	if nalus, err := Split(aus[0][:40]); err != nil || len(nalus) < 2 || Type(nalus[0]) != TypeSPS || Type(nalus[1]) != TypePPS {
		t.Errorf("truncated keyframe: %d NAL units, %v", len(nalus), err)
	}
	if _, err := AccessUnits(nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("AccessUnits(nil): %v", err)
	}
	if _, err := AccessUnits([]byte("plain text")); !errors.Is(err, ErrNoStartCode) {
		t.Errorf("AccessUnits(text): %v", err)
	}

	for name, sps := range map[string][]byte{
		"nil":                nil,
		"PPS":                {0x68, 0xCE, 0x04, 0x72},
		"short":              {0x67, 0x42},
		"header only":        {0x67, 0x42, 0xC0, 0x0A},
		"65536 macroblocks":  {0x67, 0x42, 0xC0, 0x0A, 0xDA, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00},
		"truncated fixture":  nil, // filled below
		"all ones":           bytes.Repeat([]byte{0xFF}, 32),
		"SPS type, all ones": append([]byte{0x67}, bytes.Repeat([]byte{0xFF}, 32)...),
	} {
		if name == "truncated fixture" {
			s, _, _ := Params(aus[0])
			sps = s[:6]
		}
		if s, err := ParseSPS(sps); !errors.Is(err, ErrBadSPS) {
			t.Errorf("%s: ParseSPS %+v, %v", name, s, err)
		}
	}
}

func TestEnsureParams(t *testing.T) {
	aus := fixtureAUs(t)
	sps, pps, err := Params(aus[0])
	if err != nil {
		t.Fatal(err)
	}
	strip := func(au []byte) []byte {
		nalus, err := Split(au)
		if err != nil {
			t.Fatal(err)
		}
		var keep [][]byte
		for _, n := range nalus {
			if Type(n) != TypeSPS && Type(n) != TypePPS {
				keep = append(keep, n)
			}
		}
		return Join(keep)
	}

	// the second GOP without parameter sets, as a camera that sends them
	// out of band gives it: no decoder can start there...
	var bare, fixed []byte
	for _, au := range aus[8:] {
		b := strip(au)
		bare = append(bare, b...)
		f, err := EnsureParams(b, sps, pps)
		if err != nil {
			t.Fatal(err)
		}
		if IsKeyframe(b) {
			if s, p, _ := Params(f); !bytes.Equal(s, sps) || !bytes.Equal(p, pps) {
				t.Fatal("EnsureParams did not add the SPS and PPS")
			}
		} else if &f[0] != &b[0] {
			t.Error("EnsureParams copied a delta frame")
		}
		fixed = append(fixed, f...)
	}
	dir := t.TempDir()
	decoded := func(stream []byte) int {
		p := filepath.Join(dir, "in.h264")
		if err := os.WriteFile(p, stream, 0o644); err != nil {
			t.Fatal(err)
		}
		// ffprobe counts the frames FFmpeg's decoder made
		out, _ := exec.Command("ffprobe", "-v", "quiet", "-count_frames", "-select_streams", "v:0",
			"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", p).Output()
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return n
	}
	if n := decoded(bare); n != 0 {
		t.Fatalf("FFmpeg decoded %d frames without parameter sets: the test cannot tell", n)
	}
	// ...and with EnsureParams all 8 frames decode
	if n := decoded(fixed); n != 8 {
		t.Errorf("FFmpeg decoded %d frames after EnsureParams, want 8", n)
	}

	// a keyframe with them is left alone; an access unit delimiter stays first
	if got, err := EnsureParams(aus[0], sps, pps); err != nil || &got[0] != &aus[0][0] {
		t.Errorf("a complete keyframe was changed (%v)", err)
	}
	withAUD := Join([][]byte{{0x09, 0x10}, {0x65, 0x88, 0x84}})
	got, err := EnsureParams(withAUD, sps, pps)
	if err != nil {
		t.Fatal(err)
	}
	nalus, _ := Split(got)
	var types []int
	for _, n := range nalus {
		types = append(types, int(Type(n)))
	}
	if len(types) != 4 || types[0] != 9 || types[1] != 7 || types[2] != 8 || types[3] != 5 {
		t.Errorf("NAL unit types %v, want [9 7 8 5]", types)
	}
	// a keyframe without them and nothing to add is an error
	if _, err := EnsureParams(strip(aus[8]), nil, pps); !errors.Is(err, ErrBadSPS) {
		t.Errorf("no SPS to add: %v", err)
	}
	if _, err := EnsureParams(strip(aus[8]), sps, sps); !errors.Is(err, ErrBadPPS) {
		t.Errorf("an SPS given as the PPS: %v", err)
	}
}

// TestParseSPSFromX264 checks the size and codec string against what
// ffprobe says of streams x264 makes at several profiles and sizes,
// 1080p among them (1088 coded lines, cropped).
func TestParseSPSFromX264(t *testing.T) {
	dir := t.TempDir()
	profileIDC := map[string]uint8{"Constrained Baseline": 66, "Main": 77, "High": 100}
	for _, c := range []struct {
		profile string
		size    string
	}{
		{"baseline", "640x480"},
		{"baseline", "1920x1080"},
		{"main", "1280x720"},
		{"high", "642x362"},
		{"high", "2560x1440"},
	} {
		p := filepath.Join(dir, c.profile+c.size+".h264")
		ffmpeg(t, "ffmpeg", "-f", "lavfi", "-i", "testsrc2=size="+c.size+":rate=15", "-frames:v", "1",
			"-c:v", "libx264", "-preset", "ultrafast", "-profile:v", c.profile, "-pix_fmt", "yuv420p", "-f", "h264", p)
		probe := ffmpeg(t, "ffprobe", "-show_entries", "stream=profile,level,width,height", "-of", "default=nw=1", p)
		kv := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(probe), "\n") {
			k, v, _ := strings.Cut(l, "=")
			kv[k] = v
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sps, _, err := Params(b)
		if err != nil || sps == nil {
			t.Fatalf("%s %s: no SPS (%v)", c.profile, c.size, err)
		}
		s, err := ParseSPS(sps)
		if err != nil {
			t.Fatalf("%s %s: %v", c.profile, c.size, err)
		}
		level, _ := strconv.Atoi(kv["level"])
		if got, want := strconv.Itoa(s.Width)+"x"+strconv.Itoa(s.Height), kv["width"]+"x"+kv["height"]; got != want || got != c.size {
			t.Errorf("%s %s: ParseSPS says %s, ffprobe %s", c.profile, c.size, got, want)
		}
		if s.Profile != profileIDC[kv["profile"]] || int(s.Level) != level {
			t.Errorf("%s %s: profile %d level %d, ffprobe %q level %d", c.profile, c.size, s.Profile, s.Level, kv["profile"], level)
		}
		if codec := s.Codec(); len(codec) != 11 || !strings.HasPrefix(codec, "avc1.") || strings.ToUpper(codec[5:]) != codec[5:] {
			t.Errorf("codec string %q", codec)
		}
	}
}

// AppendAccessUnit builds what Join and EnsureParams build, into a buffer
// from Buffer, and a recycled buffer is reused.
func TestAppendAccessUnit(t *testing.T) {
	aus := fixtureAUs(t)
	sps, pps, err := Params(aus[0])
	if err != nil || sps == nil || pps == nil {
		t.Fatalf("no parameter sets in the first access unit: %v", err)
	}
	for i, au := range aus {
		nalus, err := Split(au)
		if err != nil {
			t.Fatal(err)
		}
		// as a camera that sends its parameter sets out of band
		var bare [][]byte
		for _, n := range nalus {
			if Type(n) != TypeSPS && Type(n) != TypePPS {
				bare = append(bare, n)
			}
		}
		for _, in := range [][][]byte{nalus, bare} {
			want, err := EnsureParams(Join(in), sps, pps)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 0, len(want))
			got, added, err := AppendAccessUnit(buf, in, sps, pps)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("access unit %d: AppendAccessUnit differs from Join and EnsureParams", i)
			}
			if wantAdded := len(in) != len(nalus) && IsKeyframe(want); added != wantAdded {
				t.Errorf("access unit %d: added %v, want %v", i, added, wantAdded)
			}
			if &got[0] != &buf[:1][0] {
				t.Errorf("access unit %d: the buffer was not used", i)
			}
		}
	}
	if _, _, err := AppendAccessUnit(nil, [][]byte{{0x65, 0x88}}, nil, pps); !errors.Is(err, ErrBadSPS) {
		t.Errorf("a keyframe without an SPS and none given: %v, want ErrBadSPS", err)
	}
}
