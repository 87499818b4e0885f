package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// benchStop: graceful stop of a pod whose app exits on SIGTERM, from the
// signal to rkt run's exit, next to the same app stopped outside a pod.
func benchStop(b *bench) error {
	rootfs := filepath.Join(b.work, "stop-rootfs")
	if err := busyboxRootfs(rootfs); err != nil {
		return err
	}
	script := "trap 'exit 0' TERM; echo up; while :; do sleep 0.01; done"
	aci := filepath.Join(b.work, "stop.aci")
	if err := writeACI(aci, "bench.rkt-ng.io/stop", []string{"/bin/sh", "-c", script}, rootfs, false); err != nil {
		return err
	}
	id, err := b.rktOut("--insecure-options=image", "fetch", aci)
	if err != nil {
		return err
	}
	measure := func(argv []string) (time.Duration, error) {
		var ds []time.Duration
		for i := -1; i < *runs/2; i++ {
			cmd := exec.Command(argv[0], argv[1:]...)
			out, err := cmd.StdoutPipe()
			if err != nil {
				return 0, err
			}
			if err := cmd.Start(); err != nil {
				return 0, err
			}
			buf := make([]byte, 3)
			if _, err := out.Read(buf); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				return 0, fmt.Errorf("%s: no output: %v", strings.Join(argv, " "), err)
			}
			start := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				return 0, fmt.Errorf("%s: %v", strings.Join(argv, " "), err)
			}
			if i >= 0 {
				ds = append(ds, time.Since(start))
			}
		}
		return median(ds), nil
	}
	floor := "app stops on SIGTERM (sh, no pod)"
	d, err := measure([]string{"chroot", rootfs, "/bin/sh", "-c", script})
	if err != nil {
		return err
	}
	record("stop", floor, floor, d, "")
	d, err = measure(b.rkt("run", "--net=host", id))
	if err != nil {
		return err
	}
	record("stop", "rkt run: SIGTERM to exit", floor, d, "< 50 ms beyond the app's own exit")
	return nil
}

// benchLog: an app writing 100 MB to stdout through rkt run (captured and
// kept in the pod's log), next to the same app writing to /dev/null.
func benchLog(b *bench) error {
	rootfs := filepath.Join(b.work, "log-rootfs")
	if err := busyboxRootfs(rootfs); err != nil {
		return err
	}
	aci := filepath.Join(b.work, "log.aci")
	if err := writeACI(aci, "bench.rkt-ng.io/log", []string{"/bin/sh"}, rootfs, false); err != nil {
		return err
	}
	id, err := b.rktOut("--insecure-options=image", "fetch", aci)
	if err != nil {
		return err
	}
	n := *runs / 4
	if n < 5 {
		n = 5
	}
	gen := "dd if=/dev/zero bs=64k count=1600 2>/dev/null"
	floor := "rkt run: app writes 100 MB to /dev/null"
	d, err := timeCmd(n, func(int) []string {
		return b.rkt("run", "--net=host", id, "--", "-c", gen+" >/dev/null")
	})
	if err != nil {
		return err
	}
	record("log", floor, floor, d, "")
	d, err = timeCmd(n, func(int) []string {
		return []string{"sh", "-c", strings.Join(b.rkt("run", "--net=host", id, "--", "-c", "'"+gen+"'"), " ") + " >/dev/null"}
	})
	if err != nil {
		return err
	}
	record("log", "rkt run: app writes 100 MB to stdout (logged)", floor, d, "< 1.3x floor")
	// What keeping the output costs anywhere: the same bytes through a pipe
	// into a file and on to /dev/null, on the host, without a pod.
	tee := filepath.Join(b.work, "tee.log")
	d, err = timeCmd(n, func(int) []string {
		return []string{"sh", "-c", gen + " | tee " + tee + " >/dev/null; rm -f " + tee}
	})
	if err != nil {
		return err
	}
	record("log", "host: dd | tee FILE >/dev/null (no pod)", floor, d, "reference: logging to a file at all")
	_, err = b.rktOut("gc", "--grace-period=0s")
	os.RemoveAll(filepath.Join(b.work, "data", "pods"))
	return err
}
