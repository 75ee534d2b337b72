package agent

import "testing"

func TestDecodesNothing(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"rtsp h264", Config{Source: "rtsp://cam/main", Codec: CodecH264}, true},
		{"rtsp h264, sub-stream small tier", Config{Source: "rtsp://cam/main", Codec: CodecH264, LoSource: "rtsp://cam/sub", LoCodec: CodecH264}, true},
		{"rtsp h264, JPEG small tier", Config{Source: "rtsp://cam/main", Codec: CodecH264, LoWidth: 320, LoHeight: 240}, false},
		{"rtsp jpeg", Config{Source: "rtsp://cam/main", Codec: CodecJPEG}, false},
		{"rtsp, default codec", Config{Source: "rtsp://cam/main"}, false},
		{"test pattern h264", Config{Source: "testpattern", Codec: CodecH264}, false},
	} {
		if got := c.cfg.DecodesNothing(); got != c.want {
			t.Errorf("%s: DecodesNothing() = %v, want %v", c.name, got, c.want)
		}
	}
}
