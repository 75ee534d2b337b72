package agent

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/natsconn"
)

// SourceKind says what a source is.
type SourceKind int

// The kinds of sources.
const (
	TestPattern SourceKind = iota + 1 // a synthetic moving picture
	Device                            // a V4L2 camera
	File                              // a video file
	URL                               // a network stream read with FFmpeg
	Pipeline                          // a GStreamer pipeline ending in appsink
	Command                           // a command writing H.264 in MPEG-TS (exec:...)
)

func (k SourceKind) String() string {
	switch k {
	case TestPattern:
		return "testpattern"
	case Device:
		return "device"
	case File:
		return "file"
	case URL:
		return "url"
	case Pipeline:
		return "pipeline"
	case Command:
		return "command"
	}
	return "SourceKind(" + strconv.Itoa(int(k)) + ")"
}

// Source is a parsed --source.
type Source struct {
	Kind SourceKind
	// Device is the index N of a Device given as N or /dev/videoN; -1
	// for any other device path (such as /dev/v4l/by-id/...), in Path.
	Device int
	// Path is the file path, URL, GStreamer pipeline, device path or
	// command line.
	Path string
}

// isRTSP reports whether url is an rtsp:// or rtsps:// URL.
func isRTSP(url string) bool {
	scheme, _ := urlScheme(url)
	return strings.EqualFold(scheme, "rtsp") || strings.EqualFold(scheme, "rtsps")
}

// String describes the source for logs and errors, with any credentials
// in URLs redacted.
func (s Source) String() string {
	switch s.Kind {
	case TestPattern:
		return "testpattern"
	case Device:
		if s.Path != "" {
			return "camera " + s.Path
		}
		return "camera /dev/video" + strconv.Itoa(s.Device)
	case File:
		return "video file " + s.Path
	case URL:
		return "stream " + natsconn.RedactURL(s.Path)
	case Pipeline:
		return "GStreamer pipeline " + natsconn.RedactURL(s.Path)
	case Command:
		return "command " + natsconn.RedactURL(s.Path)
	}
	return s.Kind.String()
}

// ErrBadSource is wrapped by every ParseSource error.
var ErrBadSource = errors.New("bad source")

// SourceForms lists the forms of a source, for help and errors.
const SourceForms = `testpattern; a camera as 0 or /dev/video0; a video file path; ` +
	`an rtsp://, rtsps://, http:// or https:// URL; a GStreamer pipeline ("... ! appsink"); ` +
	`or exec:COMMAND writing H.264 in MPEG-TS (with --codec h264)`

// maxDevice is the highest device index accepted.
const maxDevice = 1023

// ParseSource parses a --source:
//
//	testpattern                     TestPattern
//	0, /dev/video0                  Device 0; other /dev/ paths are Device -1
//	rtsp://, rtsps://, http://, https:// URLs   URL
//	anything containing " ! "       Pipeline
//	anything else                   File (not checked here)
func ParseSource(s string) (Source, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return Source{}, fmt.Errorf("%w: empty; want %s", ErrBadSource, SourceForms)
	case strings.EqualFold(t, "testpattern"):
		return Source{Kind: TestPattern}, nil
	case strings.HasPrefix(t, CommandPrefix):
		line := strings.TrimSpace(t[len(CommandPrefix):])
		if _, err := splitCommand(line); err != nil {
			return Source{}, fmt.Errorf("%w: %s: %w", ErrBadSource, natsconn.RedactURL(t), err)
		}
		return Source{Kind: Command, Path: line}, nil
	case strings.Contains(t, " ! "):
		return Source{Kind: Pipeline, Path: t}, nil
	case isDigits(t):
		n, err := strconv.Atoi(t)
		if err != nil || n > maxDevice {
			return Source{}, fmt.Errorf("%w: camera index %s: want 0 to %d", ErrBadSource, t, maxDevice)
		}
		return Source{Kind: Device, Device: n}, nil
	case strings.HasPrefix(t, "/dev/"):
		if rest, ok := strings.CutPrefix(t, "/dev/video"); ok && isDigits(rest) {
			n, err := strconv.Atoi(rest)
			if err == nil && n <= maxDevice {
				return Source{Kind: Device, Device: n}, nil
			}
		}
		return Source{Kind: Device, Device: -1, Path: t}, nil
	}
	if scheme, ok := urlScheme(t); ok {
		switch strings.ToLower(scheme) {
		case "rtsp", "rtsps", "http", "https":
		default:
			return Source{}, fmt.Errorf("%w: %s: unsupported URL scheme %q; want %s",
				ErrBadSource, natsconn.RedactURL(t), scheme, SourceForms)
		}
		u, err := url.Parse(t)
		if err != nil || u.Host == "" {
			return Source{}, fmt.Errorf("%w: %s: not a URL with a host", ErrBadSource, natsconn.RedactURL(t))
		}
		return Source{Kind: URL, Path: t}, nil
	}
	return Source{Kind: File, Path: t}, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// urlScheme returns the scheme of s if s starts with "scheme://".
func urlScheme(s string) (string, bool) {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return "", false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", false
		}
	}
	return scheme, true
}

// ffmpegOptionsEnv is how OpenCV takes options for FFmpeg's demuxers: it
// reads the variable at every open, as "key;value|key;value". gocv 0.31
// has no way to pass OpenCV's CAP_PROP_OPEN_TIMEOUT_MSEC.
const ffmpegOptionsEnv = "OPENCV_FFMPEG_CAPTURE_OPTIONS"

// userFFmpegOptions is set when the user gave OpenCV's FFmpeg options
// themselves: they are then used as given.
var _, userFFmpegOptions = os.LookupEnv(ffmpegOptionsEnv)

// setFFmpegTimeout makes the next FFmpeg open give up on a source that
// sends nothing for d (FFmpeg's socket I/O timeout, RTSP and HTTP), instead
// of OpenCV's 30 s, keeping OpenCV's default of RTSP over TCP.
func setFFmpegTimeout(d time.Duration) {
	if userFFmpegOptions {
		return
	}
	os.Setenv(ffmpegOptionsEnv, fmt.Sprintf("rtsp_transport;tcp|timeout;%d", d.Microseconds()))
}

// open opens a source other than TestPattern. Devices get cfg's size and
// frame rate as hints; the driver picks the nearest mode it has.
func open(src Source, cfg Config) (*gocv.VideoCapture, error) {
	var (
		vc  *gocv.VideoCapture
		err error
	)
	switch src.Kind {
	case Device:
		if src.Path != "" {
			vc, err = gocv.VideoCaptureFileWithAPI(src.Path, gocv.VideoCaptureV4L2)
		} else {
			vc, err = gocv.VideoCaptureDeviceWithAPI(src.Device, gocv.VideoCaptureV4L2)
		}
	case File:
		// Checked first for a clear error: OpenCV only says it failed.
		if err := checkFile(src.Path); err != nil {
			return nil, err
		}
		vc, err = gocv.VideoCaptureFile(src.Path)
	case URL:
		setFFmpegTimeout(cfg.OpenTimeout)
		vc, err = gocv.VideoCaptureFileWithAPI(src.Path, gocv.VideoCaptureFFmpeg)
	case Pipeline:
		vc, err = gocv.VideoCaptureFileWithAPI(src.Path, gocv.VideoCaptureGstreamer)
	default:
		return nil, fmt.Errorf("cannot open %s", src)
	}
	// gocv returns its capture even when opening failed; it must be
	// closed. Its error repeats the URL with credentials: not used.
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return nil, fmt.Errorf("cannot open %s", src)
	}
	if src.Kind == Device {
		vc.Set(gocv.VideoCaptureFrameWidth, float64(cfg.Width))
		vc.Set(gocv.VideoCaptureFrameHeight, float64(cfg.Height))
		vc.Set(gocv.VideoCaptureFPS, cfg.FPS)
	}
	return vc, nil
}

// fileFPS is a video file's frame rate, 25 if the file does not say.
func fileFPS(vc *gocv.VideoCapture) float64 {
	fps := vc.Get(gocv.VideoCaptureFPS)
	if !(fps >= 1 && fps <= 1000) { // also NaN
		return 25
	}
	return fps
}
