package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Paths relative to the pod directory (the working directory of every
// entrypoint).
const (
	rootfsDir = "stage1/rootfs"
	statusDir = rootfsDir + "/rkt/status"
	logDir    = rootfsDir + "/rkt/logs"
	procDir   = rootfsDir + "/rkt/stub"
	readyLink = rootfsDir + "/rkt/supervisor-status"
)

// proc identifies a process across PID reuse: its PID and its start time
// in clock ticks since boot (proc(5), /proc/PID/stat field 22).
type proc struct {
	PID   int
	Start uint64
}

// procStat returns the parent PID and start time of pid.
func procStat(pid int) (ppid int, start uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start behind the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field N is f[N-3].
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	if start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return ppid, start, nil
}

// alive reports whether p is still the process that was recorded.
func (p proc) alive() bool {
	_, start, err := procStat(p.PID)
	return err == nil && start == p.Start
}

// writeProc records an app's main process in rkt/stub/APP.
func writeProc(app string, pid int) error {
	_, start, err := procStat(pid)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(procDir, app), fmt.Sprintf("%d %d", pid, start))
}

// readProcs reads the recorded main processes, by app.
func readProcs() (map[string]proc, error) {
	ents, err := os.ReadDir(procDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]proc{}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name()))
		if err != nil {
			return nil, err
		}
		var p proc
		if _, err := fmt.Sscanf(string(b), "%d %d", &p.PID, &p.Start); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", procDir, e.Name(), err)
		}
		out[e.Name()] = p
	}
	return out, nil
}

// readPodProc returns the run process from the pod's `pid` file.
func readPodProc() (proc, error) {
	b, err := os.ReadFile("pid")
	if err != nil {
		return proc{}, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return proc{}, fmt.Errorf("pid file: %w", err)
	}
	_, start, err := procStat(pid)
	if err != nil {
		return proc{}, fmt.Errorf("pod process %d: %w", pid, err)
	}
	return proc{PID: pid, Start: start}, nil
}

// writeFileAtomic writes a small state file by rename, so that readers (rkt
// status, stop) never see it half written.
func writeFileAtomic(path, content string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
