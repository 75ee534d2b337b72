// Package proc reads what Linux's /proc says of processes: the CPU time
// they used, alone or with every process they started. Benchmarks use it
// to measure a program they run (a hub, an agent, a browser).
package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

// ErrBadStat is a /proc/PID/stat that cannot be read as one.
var ErrBadStat = errors.New("proc: bad stat")

// stat returns the fields of /proc/pid/stat after the command name (which
// may hold spaces and parentheses): state, ppid, ... (field 3 on).
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return nil, fmt.Errorf("%w: /proc/%d/stat", ErrBadStat, pid)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return nil, fmt.Errorf("%w: /proc/%d/stat has %d fields", ErrBadStat, pid, len(f))
	}
	return f, nil
}

// cpuOf is the user + system time in stat fields f.
func cpuOf(f []string) time.Duration {
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / userHZ
}

// CPU is the CPU time (user + system) process pid has used.
func CPU(pid int) (time.Duration, error) {
	f, err := stat(pid)
	if err != nil {
		return 0, err
	}
	return cpuOf(f), nil
}

// TreeCPU is the CPU time (user + system) process pid and every process
// descended from it have used, and how many processes that is. The CPU of
// a descendant that has ended is not in it (nor, unless its parent waited
// for it, in its parent's): over a window, measure a tree whose processes
// live through it, as a browser's do.
func TreeCPU(pid int) (time.Duration, int, error) {
	root, err := stat(pid)
	if err != nil {
		return 0, 0, err
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	children := make(map[int][]int)
	cpu := make(map[int]time.Duration)
	for _, p := range stats {
		id, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || id == pid {
			continue
		}
		f, err := stat(id)
		if err != nil {
			continue // ended meanwhile
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], id)
		cpu[id] = cpuOf(f)
	}
	total, n := cpuOf(root), 1
	for todo := children[pid]; len(todo) > 0; {
		id := todo[len(todo)-1]
		todo = append(todo[:len(todo)-1], children[id]...)
		total += cpu[id]
		n++
	}
	return total, n, nil
}

// Loadavg is the machine's load average over 1, 5 and 15 minutes.
func Loadavg() ([3]float64, error) {
	var v [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return v, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return v, fmt.Errorf("%w: /proc/loadavg: %q", ErrBadStat, b)
	}
	for i := range v {
		if v[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return v, fmt.Errorf("%w: /proc/loadavg: %v", ErrBadStat, err)
		}
	}
	return v, nil
}
