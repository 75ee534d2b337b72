package test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// netns is a network namespace joined to the host by a veth pair: the host
// end has hostIP, the namespace's end nsIP.
type netns struct {
	name, hostIf, nsIf string
	hostIP, nsIP       string
}

// ip runs the ip command and fails the test if it fails.
func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNetns creates a network namespace with a unique name and a veth pair
// to it on a /30 of 10.0.0.0/8 picked at random; both are deleted when the
// test ends, whether it passes or not. It needs root (CI runs as root) and
// fails, never skips, without it.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("network namespaces need root (ip netns): run as root, as CI does")
	}
	tag := fmt.Sprintf("%d%04x", os.Getpid()%100000, rand.IntN(1<<16))
	a, b, c := 100+rand.IntN(100), rand.IntN(256), 4*rand.IntN(64)
	n := &netns{
		name:   "camhub-" + tag,
		hostIf: "ch" + tag + "h", // at most 15 characters
		nsIf:   "ch" + tag + "n",
		hostIP: fmt.Sprintf("10.%d.%d.%d", a, b, c+1),
		nsIP:   fmt.Sprintf("10.%d.%d.%d", a, b, c+2),
	}
	ip(t, "netns", "add", n.name)
	t.Cleanup(func() {
		// deleting the namespace deletes its end of the pair, and so the
		// pair; the host end is deleted too in case it was never moved
		exec.Command("ip", "link", "del", n.hostIf).Run()
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", n.name, err, out)
		}
	})
	ip(t, "link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsIf)
	ip(t, "link", "set", n.nsIf, "netns", n.name)
	ip(t, "addr", "add", n.hostIP+"/30", "dev", n.hostIf)
	ip(t, "link", "set", n.hostIf, "up")
	ip(t, "netns", "exec", n.name, "ip", "addr", "add", n.nsIP+"/30", "dev", n.nsIf)
	ip(t, "netns", "exec", n.name, "ip", "link", "set", n.nsIf, "up")
	ip(t, "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// start runs a camhub binary inside the namespace.
func (n *netns) start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	// ip netns exec execs the program: the process is the binary itself
	return startArgv(t, name, append([]string{"ip", "netns", "exec", n.name, filepath.Join(bin, name)}, args...)...)
}

// scrape reads /metrics of a process listening inside the namespace,
// giving up after timeout; nil then.
func (n *netns) scrape(base string, timeout time.Duration) map[string]float64 {
	out, err := exec.Command("ip", "netns", "exec", n.name, "curl", "-sf", "--max-time", fmt.Sprint(timeout.Seconds()), base+"/metrics").Output()
	if err != nil {
		return nil
	}
	return parseMetrics(bytes.NewReader(out))
}

// The link between an agent's host and the hub is cut for 30 s and
// restored. The agent, in its own network namespace, keeps capturing and
// counts what it cannot send as dropped, holding only the few newest frames
// of its mailbox; its memory stays bounded; frames resume by themselves,
// with a Frame-Seq jump equal to the drops (plus what a dead TCP connection
// swallowed), and no burst of stale frames.
func TestAgentLinkCut(t *testing.T) {
	ns := newNetns(t)
	hub := start(t, nil, "hub", "--listen", ns.hostIP+":0", "--monitor", "")
	natsURL := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	sub := subscribeFrames(t, natsURL, "cut")
	agent := ns.start(t, "agent", "--id", "cut", "--source", "testpattern", "--nats", natsURL, "--fps", "30", "--size", "640x480",
		"--http", "127.0.0.1:0")
	ops := agent.waitLog(`msg="http listening" url=(http://[0-9.:]+)`)
	testenv.Eventually(t, 60*time.Second, "2 s of frames", func() bool { return sub.count() >= 60 })

	pid := agent.cmd.Process.Pid
	rss := sample(t, 250*time.Millisecond, func() int64 { return rssKiB(pid) })
	m0 := ns.scrape(ops, 10*time.Second)
	if m0 == nil {
		t.Fatal("the agent's /metrics does not answer")
	}
	ip(t, "link", "set", ns.hostIf, "down")
	cut := time.Now()
	seqAtCut := sub.last().seq
	// The fault is a duration: the link is down for 30 s.
	time.Sleep(25 * time.Second)
	// Does the agent answer /metrics with the link down?
	asked := time.Now()
	m1 := ns.scrape(ops, 3*time.Second)
	t.Logf("the agent's /metrics with the link down: answered=%v after %v", m1 != nil, time.Since(asked).Round(time.Millisecond))
	time.Sleep(time.Until(cut.Add(30 * time.Second)))
	ip(t, "link", "set", ns.hostIf, "up")
	restored := time.Now()
	t.Logf("link down for %v", restored.Sub(cut).Round(time.Millisecond))
	if l := sub.last().seq; l > seqAtCut+100 {
		t.Errorf("frames kept arriving with the link down: Frame-Seq %d at the cut, %d at its end", seqAtCut, l)
	}

	if m1 == nil {
		t.Fatal("the agent's /metrics does not answer with the link down")
	}
	sentInCut := agentCounter(m1, "frames_sent_total", "cut") - agentCounter(m0, "frames_sent_total", "cut")
	{
		t.Logf("at 25 s into the cut: captured %.0f, sent %.0f, dropped %.0f since the cut; connected=%v",
			agentCounter(m1, "frames_captured_total", "cut")-agentCounter(m0, "frames_captured_total", "cut"),
			agentCounter(m1, "frames_sent_total", "cut")-agentCounter(m0, "frames_sent_total", "cut"),
			agentCounter(m1, "frames_dropped_total", "cut")-agentCounter(m0, "frames_dropped_total", "cut"),
			agentCounter(m1, "nats_connected", "cut"))
	}

	resumed := testenv.Eventually(t, 90*time.Second, "frames after the link is back", func() bool { return sub.last().seq > seqAtCut+100 })
	t.Logf("frames resumed %v after the link came back", resumed.Round(time.Millisecond))
	m2 := ns.scrape(ops, 10*time.Second)
	if m2 == nil {
		t.Fatal("the agent's /metrics does not answer after the cut")
	}
	captured := agentCounter(m2, "frames_captured_total", "cut") - agentCounter(m0, "frames_captured_total", "cut")
	dropped := agentCounter(m2, "frames_dropped_total", "cut") - agentCounter(m0, "frames_dropped_total", "cut")
	t.Logf("from before the cut to after it: the agent captured %.0f frames and dropped %.0f", captured, dropped)
	// Frame-Seq is given at capture: the first frame after the cut shows
	// the agent kept capturing through it.
	var firstAfter arrival
	frames, _ := sub.snapshot()
	for _, f := range frames {
		if f.captured.After(restored) {
			firstAfter = f
			break
		}
	}
	t.Logf("Frame-Seq %d at the cut, %d the first captured after it (%v after the link came back)",
		seqAtCut, firstAfter.seq, firstAfter.captured.Sub(restored).Round(time.Millisecond))
	if firstAfter.seq < seqAtCut+450 {
		t.Errorf("Frame-Seq %d after 30 s at 30 fps from %d: the agent did not keep capturing", firstAfter.seq, seqAtCut)
	}
	// a few seconds of frames after the resumption, to see no burst
	n := sub.count()
	testenv.Eventually(t, 30*time.Second, "frames after the resumption", func() bool { return sub.count() >= n+60 })
	rss.end()

	// Stop the agent: its last report, after its last frame, has the
	// totals.
	agent.cmd.Process.Signal(os.Interrupt)
	testenv.Eventually(t, 30*time.Second, "the agent's stopped report", func() bool {
		st := sub.lastStatus()
		return st != nil && st.State == wire.StateStopped
	})

	final := sub.lastStatus()
	frames, gaps := sub.snapshot()
	agentLog, _ := agent.logText()
	t.Logf("agent log:\n%s", agentLog)

	// The Frame-Seq jump: every frame given a Frame-Seq and not received
	// was counted as dropped by the agent, or went into the TCP connection
	// that died with the link (the agent counted it as sent). Frames
	// numbered after the last one received never left the agent (its
	// stopped report, sent after them on the same connection, came):
	// those in its mailbox when it stopped, dropped.
	head := int64(frames[0].seq) - 1
	tail := int64(final.FramesSent+final.FramesDropped) - int64(frames[len(frames)-1].seq)
	lost := int64(gaps) + head + tail - int64(final.FramesDropped)
	t.Logf("subscriber: %d frames, %d missing from Frame-Seq between them, %d before and %d after; the agent sent %d and dropped %d: %d sent into the dead connection",
		len(frames), gaps, head, tail, final.FramesSent, final.FramesDropped, lost)
	if lost < 0 || int64(len(frames)) != int64(final.FramesSent)-lost {
		t.Errorf("received %d frames, the agent sent %d; Frame-Seq gaps %d, agent drops %d", len(frames), final.FramesSent, gaps, final.FramesDropped)
	}
	if tail < 0 || tail > 3 {
		t.Errorf("the agent's counts end %d frames after the last Frame-Seq received, want the mailbox's at most 3 dropped at the stop", tail)
	}
	// what a dead connection can swallow: the socket's buffers, a few
	// MiB; at about 40 KiB a frame, far fewer than 30 s of frames
	if lost > 300 {
		t.Errorf("%d frames lost in the dead connection, not counted as dropped", lost)
	}

	// No stale burst: frames that arrived after the link came back were
	// captured after it came back, but for the few the agent had written
	// into its TCP socket before the write stalled (counted as sent
	// during the cut: the kernel still delivers a closed socket's data
	// when the link returns) and the mailbox's (at most 3).
	stale := 0
	var worst time.Duration
	for _, f := range frames {
		if f.at.After(restored) && f.captured.Before(restored) {
			stale++
			worst = max(worst, f.at.Sub(f.captured))
		}
	}
	t.Logf("%d frames captured before the link came back arrived after it (the oldest %v old)", stale, worst.Round(time.Millisecond))
	if float64(stale) > sentInCut+3 {
		t.Errorf("%d stale frames delivered after the link came back", stale)
	}

	first, lo, hi, k := rss.minMax()
	t.Logf("agent RSS over %d samples: %s before the cut, %s to %s", k, mib(first), mib(lo), mib(hi))
	if hi > first+first/2+32<<10 {
		t.Errorf("agent RSS grew from %s to %s over the cut", mib(first), mib(hi))
	}
}
