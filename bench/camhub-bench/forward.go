package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// forwardCmd measures the floor under the agent's passthrough: what a Go
// process with one P spends per burst of bytes it reads from one TCP
// connection and writes to another, bursts coming at a camera's frame
// rate. No RTSP, RTP or NATS: the system calls, wake-ups and runtime
// threads alone. The bursts come from a child process (this program, as
// "forward -source"), so that only the forwarding is in the CPU measured.
func forwardCmd(args []string) error {
	fs := flag.NewFlagSet("forward", flag.ExitOnError)
	bursts := fs.Int("bursts", 300, "bursts measured")
	packets := fs.Int("packets", 12, "writes of -size bytes a burst (the packets of one frame)")
	size := fs.Int("size", 1400, "bytes a write")
	fps := fs.Float64("fps", 15, "bursts a second")
	source := fs.String("source", "", "internal: be the source and the sink, connecting to these addresses")
	_ = fs.Parse(args)
	if *bursts < 1 || *packets < 1 || *size < 1 || !(*fps > 0) {
		return errors.New("forward: -bursts, -packets, -size and -fps must be positive")
	}
	if *source != "" {
		return forwardSource(*source, *bursts+5, *packets, *size, *fps)
	}
	runtime.GOMAXPROCS(1) // as cmd/agent runs an agent that decodes nothing

	// one listener for the bursts, one for the sink they go to (as the
	// agent's to the NATS server): both ends in the child
	var ls [2]net.Listener
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		ls[i] = l
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src := exec.Command(self, "forward", "-source", ls[0].Addr().String()+","+ls[1].Addr().String(),
		"-bursts", strconv.Itoa(*bursts), "-packets", strconv.Itoa(*packets), "-size", strconv.Itoa(*size),
		"-fps", fmt.Sprint(*fps))
	src.Stderr = os.Stderr
	if err := src.Start(); err != nil {
		return err
	}
	defer func() { _ = src.Process.Kill(); _ = src.Wait() }()
	in, err := ls[0].Accept()
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := ls[1].Accept()
	if err != nil {
		return err
	}
	defer out.Close()

	buf := make([]byte, 64<<10)
	want := *bursts * *packets * *size
	var c0 time.Duration
	var t0 time.Time
	for got, reads := 0, 0; got < want; reads++ {
		n, err := in.Read(buf)
		if err != nil {
			return fmt.Errorf("forward: after %d of %d bytes: %w", got, want, err)
		}
		if reads == 0 {
			c0, t0 = selfCPU(), time.Now()
		}
		got += n
		if _, err := out.Write(buf[:n]); err != nil {
			return err
		}
	}
	cpu, el := selfCPU()-c0, time.Since(t0)
	fmt.Printf("forward: %d bursts of %d × %d bytes at %g a second in %v: %.3f ms of CPU a burst\n",
		*bursts, *packets, *size, *fps, el.Round(time.Millisecond), float64(cpu)/float64(time.Millisecond)/float64(*bursts))
	return nil
}

// forwardSource writes the bursts to the first of addrs ("source,sink"),
// each write on its own (TCP_NODELAY), as a camera's packets go out, and
// drains what comes back on the second.
func forwardSource(addrs string, bursts, packets, size int, fps float64) error {
	srcAddr, sinkAddr, ok := strings.Cut(addrs, ",")
	if !ok {
		return fmt.Errorf("forward: -source %q: want source,sink", addrs)
	}
	c, err := net.Dial("tcp", srcAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	sink, err := net.Dial("tcp", sinkAddr)
	if err != nil {
		return err
	}
	defer sink.Close()
	go func() { _, _ = io.Copy(io.Discard, sink) }() // ends when the process does
	p := make([]byte, size)
	next := time.Now()
	for range bursts {
		for range packets {
			if _, err := c.Write(p); err != nil {
				return nil // the measuring side has what it wanted
			}
		}
		next = next.Add(time.Duration(float64(time.Second) / fps))
		time.Sleep(time.Until(next))
	}
	return nil
}
