package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"camhub/internal/proc"
)

// Result is one measurement, written as a JSON line.
type Result struct {
	Bench  string             `json:"bench"`  // relay, latency, overload, agent, viewer, decode, baseline
	Name   string             `json:"name"`   // the case, e.g. "memory 8->1 640x480"
	Values map[string]float64 `json:"values"` // what was measured
	Labels map[string]string  `json:"labels,omitempty"`
	Series [][2]float64       `json:"series,omitempty"` // e.g. latency over time
	Time   time.Time          `json:"time"`
}

// results appends Results to a JSON lines file and echoes a summary.
type results struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *results) add(res Result) {
	res.Time = time.Now().UTC()
	b, err := json.Marshal(res)
	if err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w.Write(append(b, '\n'))
	keys := make([]string, 0, len(res.Values))
	for k := range res.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, " %s=%s", k, strconv.FormatFloat(res.Values[k], 'g', 4, 64))
	}
	fmt.Fprintf(os.Stderr, "  %-9s %-34s%s\n", res.Bench, res.Name, sb.String())
}

// percentiles returns p50, p99 and max of ds in milliseconds.
func percentiles(ds []time.Duration) (p50, p99, mx float64) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return ms(s[len(s)*50/100]), ms(s[min(len(s)-1, len(s)*99/100)]), ms(s[len(s)-1])
}

// selfCPU is this process's CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procRSS is a process's resident set in bytes.
func procRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb * 1024
		}
	}
	return 0
}

// child is a process the run started; stop ends it.
type child struct {
	cmd     *exec.Cmd
	out     *bufio.Scanner
	done    chan error
	lastOut string // stdout after the first line; set before done is sent
}

// startChild starts a program whose first stdout line (if wantLine) is
// returned: a URL, for instance.
func startChild(wantLine bool, name string, args ...string) (*child, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	c := &child{cmd: cmd, out: bufio.NewScanner(pipe), done: make(chan error, 1)}
	var line string
	if wantLine {
		if !c.out.Scan() {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, "", fmt.Errorf("%s printed nothing", name)
		}
		line = c.out.Text()
	}
	go func() {
		var rest []string
		for c.out.Scan() {
			rest = append(rest, c.out.Text())
		}
		c.lastOut = strings.Join(rest, "\n")
		c.done <- cmd.Wait()
	}()
	return c, line, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop signals the child and waits for it; its remaining stdout is returned.
func (c *child) stop() string {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
	return c.lastOut
}

// wait waits for the child to end by itself; its remaining stdout is returned.
func (c *child) wait() string {
	<-c.done
	return c.lastOut
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return h, port, err
}

func jpegSize(b []byte) (int, int, error) {
	c, err := jpeg.DecodeConfig(bytes.NewReader(b))
	return c.Width, c.Height, err
}

// loadavg is the machine's load average over 1, 5 and 15 minutes.
func loadavg() map[string]float64 {
	v := map[string]float64{}
	l, err := proc.Loadavg()
	if err != nil {
		return v
	}
	for i, k := range []string{"load1", "load5", "load15"} {
		v[k] = l[i]
	}
	return v
}
