// Command camhub-bench measures camhub beside the raw NATS ceiling: relay
// throughput, capture-to-viewer latency, overload, agent CPU and grid
// viewer decode cost. bench/run.sh drives it (make bench); see
// docs/BENCHMARKS.md for what each part measures and how.
//
//	camhub-bench frames  -out DIR            make the benchmark's JPEG frames
//	camhub-bench footage -out DIR            real footage at 720p as JPEG and H.264
//	camhub-bench run     -frames DIR -bin DIR -out FILE [-quick] [-only a,b]
//	camhub-bench publish -nats URL -frames DIR/640x480 -cams N -fps F [-video FILE]
//	camhub-bench natsd   -listen HOST:PORT   a bare nats-server (no JetStream)
//	camhub-bench report  -in FILE -out docs/BENCHMARKS.md
//
// Results are JSON lines, one per measurement, so that the report, the
// chart and benchstat-style comparisons read the same file.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "frames":
		err = framesCmd(args)
	case "footage":
		err = footageCmd(args)
	case "run":
		err = runCmd(args)
	case "publish":
		err = publishCmd(args)
	case "bareloop":
		err = bareloopCmd(args)
	case "natsd":
		err = natsdCmd(args)
	case "forward":
		err = forwardCmd(args)
	case "report":
		err = reportCmd(args)
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "camhub-bench: unknown command %q\n", cmd)
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "camhub-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: camhub-bench <command> [flags]

commands:
  frames   make the benchmark's frames: about 100 distinct JPEGs at 640x480 and
           1280x720, quality 80, from a moving Mandelbrot zoom (ffmpeg), and an
           MJPG video of the 1280x720 ones for the agent
  footage  real footage for the H.264 benchmarks: OpenCV's vtest clip at
           1280x720, as JPEGs (quality 80) and as H.264 with the agent's
           encoder defaults
  run      run the benchmarks, appending JSON lines to -out
  publish  simulated cameras: publish pre-encoded frames with camhub's headers
  natsd    a bare nats-server without JetStream: the raw NATS ceiling
  bareloop the agent's work in a plain OpenCV loop: the agent's reference
  forward  the floor under the agent's passthrough: a Go process's CPU per
           burst of packets forwarded from one TCP connection to another
  report   write the Markdown report from the JSON lines

Run "camhub-bench <command> -h" for a command's flags. make bench runs it all.
`)
	os.Exit(2)
}
