package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/rkt-ng/rkt/internal/copytree"
	"github.com/rkt-ng/rkt/pods"
)

// benchPods: `rkt list` and `rkt gc` with many exited pods present, and a
// three-app pod start next to a one-app start.
//
// The exited pods are clones of one real exited pod (its directory copied
// under fresh UUIDs), so list and gc read, lock, run the stage1 gc
// entrypoint for, and remove exactly what they would for pods that ran. A
// prepared pod of the same image and stage1 stays all along, so that the
// trees the clones record stay in the store, as they would while any pod
// uses them, and each gc does the same work.
func benchPods(b *bench) error {
	rootfs := filepath.Join(b.work, "pods-rootfs")
	if err := busyboxRootfs(rootfs); err != nil {
		return err
	}
	aci := filepath.Join(b.work, "pods-true.aci")
	if err := writeACI(aci, "bench.rkt-ng.io/pods-true", []string{"/bin/true"}, rootfs, false); err != nil {
		return err
	}
	data := filepath.Join(b.work, "data")
	id, err := b.rktOut("--insecure-options=image", "fetch", aci)
	if err != nil {
		return err
	}
	if _, err := b.rktOut("gc", "--grace-period=0s"); err != nil {
		return err
	}
	if _, err := b.rktOut("prepare", "--quiet", id); err != nil {
		return err
	}
	uuidFile := filepath.Join(b.work, "pods-uuid")
	if _, err := b.rktOut("run", "--net=host", "--uuid-file-save="+uuidFile, id); err != nil {
		return err
	}
	u, err := os.ReadFile(uuidFile)
	if err != nil {
		return err
	}
	src := filepath.Join(data, "pods", "run", string(u))
	template := filepath.Join(b.work, "pod-template")
	if err := copytree.Copy(src, template); err != nil {
		return fmt.Errorf("copy exited pod: %w", err)
	}
	if _, err := b.rktOut("gc", "--grace-period=0s"); err != nil {
		return err
	}
	clone := func(n int) error {
		for range n {
			if err := copytree.Copy(template, filepath.Join(data, "pods", "run", pods.NewUUID())); err != nil {
				return fmt.Errorf("clone exited pod: %w", err)
			}
		}
		return nil
	}

	if err := clone(1000); err != nil {
		return err
	}
	d, err := timeCmd(*runs, func(int) []string { return b.rkt("list", "--no-legend") })
	if err != nil {
		return err
	}
	record("pods", "rkt list (1000 exited pods)", "rkt list (1000 exited pods)", d, "< 100ms")
	d, err = timeCmd(*runs, func(int) []string { return b.rkt("list", "--format=json") })
	if err != nil {
		return err
	}
	record("pods", "rkt list --format=json (1000 exited pods)", "rkt list (1000 exited pods)", d, "")
	if _, err := b.rktOut("gc", "--grace-period=0s"); err != nil {
		return err
	}

	// gc of N pods, a few times each: every run consumes its pods.
	reps := max(*runs/5, 3)
	gcRow := map[int]string{}
	for _, n := range []int{250, 500, 1000} {
		var ds []time.Duration
		for range reps {
			if err := clone(n); err != nil {
				return err
			}
			argv := b.rkt("gc", "--grace-period=0s")
			start := time.Now()
			out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("rkt gc: %v\n%s", err, out)
			}
			ds = append(ds, time.Since(start))
		}
		gcRow[n] = fmt.Sprintf("rkt gc (%d exited pods)", n)
		note := ""
		if n > 250 {
			note = fmt.Sprintf("linear: %dx the 250 row", n/250)
		}
		record("pods", gcRow[n], gcRow[250], median(ds), note)
	}
	if _, err := b.rktOut("gc", "--grace-period=0s", "--expire-prepared=0s"); err != nil {
		return err
	}

	one := "rkt run (1 app, --net=host)"
	d, err = timeCmd(*runs, func(int) []string { return b.rkt("run", "--net=host", id) })
	if err != nil {
		return err
	}
	record("pods", one, one, d, "")
	d, err = timeCmd(*runs, func(int) []string { return b.rkt("run", "--net=host", id, "---", id, "---", id) })
	if err != nil {
		return err
	}
	record("pods", "rkt run (3 apps, --net=host)", one, d, "")
	_, err = b.rktOut("gc", "--grace-period=0s")
	return err
}
