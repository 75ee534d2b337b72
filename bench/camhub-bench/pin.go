package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Placement of the processes of a latency measurement. Shared: the hub,
// the simulated cameras and the viewer all run on every CPU, as they do in
// a single-machine demo; each of them can then delay the others, and the
// simulated cameras (hundreds of connections in one process) weigh on the
// hub as real ones, each on its own machine, never would. Pinned: the hub
// runs on one CPU of its own and everything else on the others, so the
// latency measured is the hub's with one CPU, not the load generator's.
const (
	shared = "shared"
	pinned = "pinned"
)

// cpuSplit is the hub's CPU (for taskset -c) and the set of the others,
// taken from this process's affinity; ok is false with fewer than two.
func cpuSplit() (hub string, rest unix.CPUSet, ok bool) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil || all.Count() < 2 {
		return "", rest, false
	}
	first := -1
	for c := range len(all) * 64 {
		if !all.IsSet(c) {
			continue
		}
		if first < 0 {
			first = c
			continue
		}
		rest.Set(c)
	}
	return strconv.Itoa(first), rest, true
}

// pinSelf runs every thread of this process (and so every thread and
// child it starts from now on) on set, until restore.
func pinSelf(set unix.CPUSet) (restore func(), err error) {
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, err
	}
	apply := func(s unix.CPUSet) error {
		tids, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tids {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			// a thread may have exited since the listing
			if err := unix.SchedSetaffinity(tid, &s); err != nil && err != unix.ESRCH {
				return fmt.Errorf("affinity of thread %d: %w", tid, err)
			}
		}
		return nil
	}
	if err := apply(set); err != nil {
		apply(old)
		return nil, err
	}
	return func() { apply(old) }, nil
}

// pinnedCommand is name and args run on cpus through taskset, which sets
// the affinity before the program starts (and so for all its threads).
func pinnedCommand(cpus, name string, args ...string) (string, []string) {
	if cpus == "" {
		return name, args
	}
	return "taskset", append([]string{"-c", cpus, name}, args...)
}
