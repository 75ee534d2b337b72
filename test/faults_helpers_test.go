package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// startArgv runs any command as a proc (argv[0] is the program), with its
// log collected; it is killed when the test ends. name is for messages.
func startArgv(t *testing.T, name string, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "CAMHUB_INSECURE=true", "CAMHUB_DATA="+t.TempDir()) // as start does
	return startCmd(t, name, cmd, strings.Join(argv, " "))
}

// parseMetrics reads Prometheus text: "name{labels} value" -> value.
func parseMetrics(r io.Reader) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// scrape reads a process's /metrics; nil if it does not answer.
func scrape(base string) map[string]float64 {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil
	}
	return parseMetrics(resp.Body)
}

// rssKiB is a process's resident memory, from /proc; 0 if it is gone.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// sampler samples a value every interval until stopped, keeping the
// samples.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	vals []int64
}

func sample(t *testing.T, every time.Duration, f func() int64) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			v := f()
			s.mu.Lock()
			s.vals = append(s.vals, v)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.end)
	return s
}

// end stops sampling; it may be called more than once.
func (s *sampler) end() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// minMax returns the first, smallest and largest sample.
func (s *sampler) minMax() (first, lo, hi int64, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.vals) == 0 {
		return 0, 0, 0, 0
	}
	first, lo, hi = s.vals[0], s.vals[0], s.vals[0]
	for _, v := range s.vals {
		lo, hi = min(lo, v), max(hi, v)
	}
	return first, lo, hi, len(s.vals)
}

// arrival is one frame as a subscriber got it.
type arrival struct {
	seq      uint64
	captured time.Time // Frame-Time
	at       time.Time // received
}

// frameLog is a plain NATS subscriber in the test process that records
// every frame of one camera and the Frame-Seq gaps between them.
type frameLog struct {
	mu       sync.Mutex
	frames   []arrival
	gaps     uint64 // frames missing from the Frame-Seq sequence
	restarts int    // Frame-Seq went back: the agent restarted
	bad      int
	status   *wire.Status // the newest status report
}

func subscribeFrames(t *testing.T, url, id string) *frameLog {
	t.Helper()
	l := &frameLog{}
	nc := testenv.Conn(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.ReconnectBufSize(-1))
	// One subscription for frames and status: the handler sees them in
	// the order the agent sent them, so the agent's "stopped" report comes
	// after its last frame.
	sub, err := nc.Subscribe(wire.SubjectPrefix+"."+id+".*", func(m *nats.Msg) {
		now := time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		if m.Subject == wire.StatusSubject(id) {
			if st, err := wire.ParseStatus(m.Subject, m.Data); err == nil {
				l.status = st
			}
			return
		}
		f, err := wire.ParseFrame(m.Header)
		if err != nil {
			l.bad++
			return
		}
		if n := len(l.frames); n > 0 {
			prev := l.frames[n-1].seq
			switch {
			case f.Seq > prev+1:
				l.gaps += f.Seq - prev - 1
			case f.Seq <= prev:
				l.restarts++
			}
		}
		l.frames = append(l.frames, arrival{seq: f.Seq, captured: f.Time, at: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return l
}

// snapshot returns the frames so far and the gaps among them.
func (l *frameLog) snapshot() ([]arrival, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]arrival(nil), l.frames...), l.gaps
}

// lastStatus returns the newest status report; nil if none.
func (l *frameLog) lastStatus() *wire.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

func (l *frameLog) restartCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.restarts
}

func (l *frameLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.frames)
}

// last returns the newest frame; zero if none.
func (l *frameLog) last() arrival {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.frames) == 0 {
		return arrival{}
	}
	return l.frames[len(l.frames)-1]
}

// agentCounter reads one of an agent's counters from its /metrics.
func agentCounter(m map[string]float64, name, cam string) float64 {
	return m[fmt.Sprintf(`camhub_agent_%s{camera=%q}`, name, cam)]
}

// mib formats KiB as MiB.
func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
