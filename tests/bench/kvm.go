package main

import (
	"archive/tar"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rkt-ng/rkt/internal/vm"
	"github.com/rkt-ng/rkt/stage1/kvm"
	"github.com/rkt-ng/rkt/stage1/kvm/agent"
)

var (
	kvmImage = flag.String("stage1-kvm", "bin/stage1-kvm.aci", "KVM stage1 image")
	kvmRuns  = flag.Int("kvm-n", 5, "counted runs per KVM row, alternating with the other row (each boots a virtual machine)")
)

// benchKVM: warm `rkt run` of /bin/true with the KVM stage1, next to a bare
// qemu boot of the same kernel and initramfs to its init (which powers off
// at once), with the same accelerator and memory, in the same run.
func benchKVM(b *bench) error {
	qemu, err := vm.FindQEMU()
	if err != nil {
		return err
	}
	img, err := filepath.Abs(*kvmImage)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.work, "kvm")
	kernel, initrd := filepath.Join(dir, "vmlinux"), filepath.Join(dir, "initramfs")
	if err := extractFromACI(img, map[string]string{"rootfs" + kvm.KernelPath: kernel, "rootfs" + kvm.InitrdPath: initrd}); err != nil {
		return err
	}
	accel, why, err := vm.ChooseAccel(&vm.Kernel{Image: kernel})
	if err != nil {
		return err
	}
	rootfs := filepath.Join(b.work, "true-rootfs")
	if err := busyboxRootfs(rootfs); err != nil {
		return err
	}
	aci := filepath.Join(b.work, "true.aci")
	if err := writeACI(aci, "bench.rkt-ng.io/true", []string{"/bin/true"}, rootfs, false); err != nil {
		return err
	}
	id, err := b.rktOut("--insecure-options=image", "fetch", aci)
	if err != nil {
		return err
	}
	// The pod's guest: overhead plus one app without a memory limit.
	m := &vm.Machine{QEMU: qemu, Kernel: kernel, Initrd: initrd, Accel: accel, MemoryMB: 384,
		Cmdline: kvm.KernelCmdline + " " + agent.BootOnlyParam}
	args, err := m.Args()
	if err != nil {
		return err
	}
	floor := fmt.Sprintf("bare qemu boot to init (%s)", accel)
	// Alternated, so that a change of the machine's load during the group
	// weighs on both rows alike (under TCG a boot takes seconds, and the
	// load of a shared machine changes in that time).
	ds, rss, err := timeRSSAlternating(*kvmRuns, append([]string{qemu}, args...),
		b.rkt("run", "--stage1-path="+img, "--net=none", id))
	if err != nil {
		return err
	}
	record("kvm", floor, floor, ds[0], fmt.Sprintf("qemu max RSS %d MiB; %s", rss[0]>>10, why))
	record("kvm", "rkt run stage1-kvm /bin/true (warm)", floor, ds[1], fmt.Sprintf("<= 1.3x bare boot; max RSS %d MiB", rss[1]>>10))
	_, err = b.rktOut("gc", "--grace-period=0s")
	return err
}

// timeRSSAlternating runs the commands a and b in turn, after one warm-up
// of each, n counted times each, and returns their median times and the
// largest max RSS (KiB) of each command and its waited-for descendants
// (qemu under rkt run).
func timeRSSAlternating(n int, a, b []string) ([2]time.Duration, [2]int64, error) {
	argvs := [2][]string{a, b}
	var ds [2][]time.Duration
	var rss [2]int64
	for i := -1; i < n; i++ {
		for j, argv := range argvs {
			cmd := exec.Command(argv[0], argv[1:]...)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return [2]time.Duration{}, rss, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out.String())
			}
			if i >= 0 {
				ds[j] = append(ds[j], time.Since(start))
			}
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				rss[j] = max(rss[j], ru.Maxrss)
			}
		}
	}
	return [2]time.Duration{median(ds[0]), median(ds[1])}, rss, nil
}

// extractFromACI copies files of an (uncompressed) ACI, by tar name, to
// host paths.
func extractFromACI(aci string, files map[string]string) error {
	f, err := os.Open(aci)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	left := len(files)
	for left > 0 {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", aci, err)
		}
		dst, ok := files[strings.TrimPrefix(h.Name, "./")]
		if !ok || h.Typeflag != tar.TypeReg {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		left--
	}
	if left > 0 {
		return fmt.Errorf("%s: kernel or initramfs missing", aci)
	}
	return nil
}
