package proc

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"camhub/internal/testenv"
)

// A child that spins shows in its parent's tree's CPU time, and the tree
// counts it; this process's own CPU time is read.
func TestTreeCPU(t *testing.T) {
	self, err := CPU(os.Getpid())
	if err != nil || self < 0 {
		t.Fatalf("CPU of this process: %v, %v", self, err)
	}
	before, n0, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// a shell that spins for a while, then a sleep that keeps it alive
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	testenv.Eventually(t, 30*time.Second, "the child's CPU time in the tree", func() bool {
		after, n, err := TreeCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		child, err := CPU(cmd.Process.Pid)
		return err == nil && child > 0 && n > n0 && after >= before+child
	})
	if _, _, err := TreeCPU(1 << 30); err == nil {
		t.Error("a process that does not exist has a tree")
	}
	if l, err := Loadavg(); err != nil || l[0] < 0 {
		t.Errorf("load average %v, %v", l, err)
	}
}
