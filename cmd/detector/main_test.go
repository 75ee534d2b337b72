package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParse(t *testing.T) {
	var help strings.Builder
	if _, err := parse([]string{"--help"}, &help); !errors.Is(err, pflag.ErrHelp) || !strings.Contains(help.String(), "--motion-cams") {
		t.Fatalf("--help: %v\n%s", err, help.String())
	}
	o, err := parse([]string{"--motion-cams", "front,garden", "--motion-threshold", "30", "--motion-cameras", `{"garden":{"enabled":false}}`}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := o.motion.Camera()
	if err != nil || cam.Motion.Threshold != 30 || len(o.motion.Cams) != 2 || len(o.motion.Cameras) != 1 {
		t.Errorf("%+v %+v %v", o.motion, cam, err)
	}
	for _, args := range [][]string{{"--motion-cams", "a b"}, {"--motion-threshold", "0"}, {"extra"}, {"--motion-mask", "0,0"}} {
		if _, err := parse(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
