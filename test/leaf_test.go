package test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/testenv"
)

type sited struct {
	ID    string `json:"id"`
	Site  string `json:"site"`
	State string `json:"state"`
}

// sitedList runs viewer list --json and returns the cameras by id.
func sitedList(t *testing.T, url string) (map[string]sited, error) {
	t.Helper()
	out, err := run(t, "viewer", "list", "--json", "--nats", url)
	if err != nil {
		return nil, err
	}
	var cams []sited
	if err := json.Unmarshal([]byte(out), &cams); err != nil {
		t.Fatalf("viewer list --json: %v\n%s", err, out)
	}
	m := map[string]sited{}
	for _, c := range cams {
		m[c.ID] = c
	}
	return m, nil
}

// A site hub runs as a leaf node of a central hub. The central hub sees the
// site's camera, with its site, next to its own; the link is cut (the
// central hub is killed): the site's viewer keeps live frames and its
// replay; the central hub comes back and sees the site's camera again.
func TestLeafSiteOutage(t *testing.T) {
	ports := testenv.FreePorts(t, 3)
	centralURL := fmt.Sprintf("nats://127.0.0.1:%d", ports[0])
	siteURL := fmt.Sprintf("nats://127.0.0.1:%d", ports[1])
	centralArgs := []string{"--name", "central", "--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--monitor", "",
		"--leaf-listen", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--storage", "file", "--store-dir", t.TempDir(), "--replay", "5m"}
	central := start(t, nil, "hub", centralArgs...)
	central.waitLog(`msg="replay buffer ready"`)
	site := start(t, nil, "hub", "--name", "farm-hub", "--listen", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--monitor", "",
		"--leaf", fmt.Sprintf("nats://127.0.0.1:%d", ports[2]), "--domain", "farm", "--storage", "file", "--store-dir", t.TempDir(), "--replay", "5m")
	site.waitLog(`msg="replay buffer ready"`)
	site.waitLog(`msg="leaf link up"`)

	start(t, nil, "agent", "--id", "gate", "--site", "farm", "--source", "testpattern", "--fps", "10", "--size", "320x240", "--nats", siteURL)
	start(t, nil, "agent", "--id", "hall", "--source", "testpattern", "--fps", "10", "--size", "320x240", "--nats", centralURL)
	w := watch(t, siteURL) // the site's viewer

	// one list at the central hub: its own camera and the site's, with its site
	began := time.Now()
	testenv.Eventually(t, 60*time.Second, "both cameras live at the central hub", func() bool {
		cams, err := sitedList(t, centralURL)
		return err == nil && cams["gate"].State == "live" && cams["gate"].Site == "farm" && cams["hall"].State == "live"
	})

	t.Logf("the central hub lists the site's camera %v after the hubs started", time.Since(began))
	if out, err := run(t, "viewer", "list", "--nats", centralURL); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("viewer list at the central hub:\n%s", out)
	}
	// the site lists its camera from its own buffer (the central hub's
	// cameras come down the link too while it is up: a documented limit,
	// docs/SCALING.md)
	siteCams, err := sitedList(t, siteURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("viewer list at the site: %v", siteCams)
	if siteCams["gate"].State != "live" {
		t.Fatalf("the site lists %v", siteCams)
	}
	testenv.Eventually(t, 30*time.Second, "site frames at the site viewer", func() bool { return w.framesSince(began, "gate") })
	streaming := time.Now()
	testenv.Eventually(t, 30*time.Second, "3 s of frames", func() bool { return time.Since(streaming) > 3*time.Second })

	// cut the link: the central hub dies
	cut := time.Now()
	central.cmd.Process.Kill()
	<-central.done
	site.waitLog(`(?s)leaf link up.*msg="leaf link down`)
	t.Logf("killed the central hub (SIGKILL): the site hub logged its leaf link down %v later", time.Since(cut))
	testenv.Eventually(t, 30*time.Second, "live site frames during the outage", func() bool {
		return w.framesSince(cut.Add(2*time.Second), "gate")
	})

	t.Logf("the site viewer's longest gap between frames so far: %v", w.gaps()["gate"])
	dir := t.TempDir()
	n := export(t, "--cam", "gate", "--since", "2s", "--out", filepath.Join(dir, "outage.avi"), "--nats", siteURL)
	if n == 0 {
		t.Fatal("no frames in the site's buffer during the outage")
	}
	if cams, err := sitedList(t, siteURL); err != nil || cams["gate"].State != "live" {
		t.Fatalf("the site's list during the outage: %v %v", cams, err)
	}

	// restore the link
	testenv.Eventually(t, 30*time.Second, "a 5 s outage", func() bool { return time.Since(cut) > 5*time.Second })
	restored := time.Now()
	central = start(t, nil, "hub", centralArgs...)
	central.waitLog(`msg="replay buffer ready"`)
	site.waitLog(`(?s)leaf link down.*msg="leaf link up`)
	t.Logf("the site hub logged its leaf link up again %v after the central hub restarted", time.Since(restored))
	testenv.Eventually(t, 60*time.Second, "the site's camera live at the central hub again", func() bool {
		cams, err := sitedList(t, centralURL)
		return err == nil && cams["gate"].State == "live" && cams["gate"].Site == "farm"
	})

	t.Logf("the central hub lists the site's camera live %v after it restarted", time.Since(restored))
	testenv.Eventually(t, 30*time.Second, "3 s after the link came back", func() bool { return time.Since(restored) > 3*time.Second })

	// what each buffer holds of the outage: the site's, all of it; the
	// central one, nothing
	from, to := cut.Add(-2*time.Second), time.Now()
	siteJS, err := jetstream.New(watch(t, siteURL).nc)
	if err != nil {
		t.Fatal(err)
	}
	centralJS, err := jetstream.New(watch(t, centralURL).nc)
	if err != nil {
		t.Fatal(err)
	}
	siteHole, siteBefore, siteAfter := bufferHole(t, siteJS, "gate", from, to, cut)
	centralHole, centralBefore, centralAfter := bufferHole(t, centralJS, "gate", from, to, cut)
	t.Logf("frames of gate from 2 s before the cut to now: site buffer %d before + %d after the cut (longest gap %v); central buffer %d + %d (longest gap %v)",
		siteBefore, siteAfter, siteHole, centralBefore, centralAfter, centralHole)
	if siteAfter == 0 || centralBefore == 0 || centralAfter == 0 || centralHole < restored.Sub(cut) || siteHole > centralHole {
		t.Fatalf("want the site buffer whole, and the central one with the site's frames on both sides of a hole")
	}
}
