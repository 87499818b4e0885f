package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

type group struct {
	name string
	run  func(b *bench) error
}

var groups = []group{
	{"start", benchStart},
	{"fetch", benchFetch},
	{"net", benchNet},
	{"stop", benchStop},
	{"log", benchLog},
	{"pods", benchPods},
	{"remote", benchRemote},
	{"kvm", benchKVM},
	{"cri", benchCRI},
}

// benchStart: warm `rkt run` of a /bin/true image already in the store,
// next to the namespace floor and runc/crun on the same rootfs.
func benchStart(b *bench) error {
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
	floor := "namespace floor (unshare -fmpiu chroot)"
	d, err := timeCmd(*runs, func(int) []string {
		return []string{"unshare", "-fmpiu", "chroot", rootfs, "/bin/true"}
	})
	if err != nil {
		return err
	}
	record("start", floor, floor, d, "")
	d, err = timeCmd(*runs, func(int) []string { return b.rkt("run", "--net=host", id) })
	if err != nil {
		return err
	}
	record("start", "rkt run (warm, default isolators)", floor, d, "< runc, <= 3x floor (--net=host, as the floor)")
	d, err = timeCmd(*runs, func(int) []string {
		return b.rkt("--insecure-options=capabilities,paths,seccomp", "run", "--net=host", id)
	})
	if err != nil {
		return err
	}
	record("start", "rkt run (no caps/paths/seccomp)", "rkt run (warm, default isolators)", d, "confinement < 20% of start")
	bundle := filepath.Join(b.work, "bundle")
	os.MkdirAll(bundle, 0o755)
	if _, err := exec.LookPath("runc"); err == nil {
		if err := ociBundle(bundle, rootfs); err == nil {
			d, err := timeCmd(*runs, func(i int) []string {
				return []string{"runc", "run", "--bundle", bundle, fmt.Sprintf("rktbench-%d", i+1)}
			})
			if err == nil {
				record("start", "runc run", floor, d, "")
			} else {
				fmt.Fprintln(os.Stderr, "runc:", err)
			}
		}
	}
	if _, err := exec.LookPath("crun"); err == nil {
		// crun 1.8 refuses cgroup v1 hybrid; as in the peers' measurement it
		// runs in a private mount namespace without the cgroup2 mount, and
		// that wrapper's own cost is measured and subtracted.
		wrap := "umount /sys/fs/cgroup/unified 2>/dev/null; exec "
		w, err := timeCmd(*runs, func(int) []string { return []string{"unshare", "-m", "sh", "-c", wrap + "/bin/true"} })
		if err == nil {
			d, err := timeCmd(*runs, func(i int) []string {
				return []string{"unshare", "-m", "sh", "-c", wrap + fmt.Sprintf("crun run --bundle %s crunbench-%d", bundle, i+1)}
			})
			if err == nil {
				record("start", "crun run (net of its wrapper)", floor, d-w, "")
			} else {
				fmt.Fprintln(os.Stderr, "crun:", err)
			}
		}
	}
	_, err = b.rktOut("gc", "--grace-period=0s")
	return err
}

// benchFetch: `rkt fetch` of a ~100 MB signed ACI next to gzip -dc | sha512sum.
func benchFetch(b *bench) error {
	rootfs := filepath.Join(b.work, "big-rootfs")
	src := []string{"/usr/lib/python3.11", "/usr/libexec", "/usr/share/perl"}
	var have []string
	for _, s := range src {
		if _, err := os.Stat(s); err == nil {
			have = append(have, s)
		}
	}
	os.MkdirAll(rootfs, 0o755)
	args := append([]string{"-a"}, have...)
	if out, err := exec.Command("cp", append(args, rootfs)...).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v %s", err, out)
	}
	aci := filepath.Join(b.work, "big.aci")
	if err := writeACI(aci, "bench.rkt-ng.io/big", []string{"/bin/true"}, rootfs, true); err != nil {
		return err
	}
	fi, _ := os.Stat(aci)
	home := filepath.Join(b.work, "gnupg")
	os.MkdirAll(home, 0o700)
	gpg := func(args ...string) error {
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--quiet", "--passphrase", ""}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("gpg %v: %v %s", args, err, out)
		}
		return nil
	}
	if err := gpg("--quick-gen-key", "Bench <bench@example.com>", "ed25519", "sign", "never"); err != nil {
		return err
	}
	pub := filepath.Join(b.work, "bench.pub")
	if err := gpg("--armor", "--output", pub, "--export"); err != nil {
		return err
	}
	if err := gpg("--armor", "--detach-sign", aci); err != nil {
		return err
	}
	if _, err := b.rktOut("trust", "--prefix=bench.rkt-ng.io", "--skip-fingerprint-review", pub); err != nil {
		return err
	}
	n := *runs / 4
	if n < 5 {
		n = 5
	}
	floor := "gzip -dc | sha512sum (fetch floor)"
	d, err := timeCmd(n, func(int) []string { return []string{"sh", "-c", "gzip -dc " + aci + " | sha512sum >/dev/null"} })
	if err != nil {
		return err
	}
	record("fetch", floor, floor, d, fmt.Sprintf("%d MB compressed", fi.Size()>>20))
	d, err = timeCmd(n, func(int) []string {
		// A fresh store each time: a cold import, signature verified.
		return []string{"sh", "-c", strings.Join(b.rkt("--dir="+filepath.Join(b.work, "fetchdata"), "fetch", aci), " ") +
			" >/dev/null && rm -rf " + filepath.Join(b.work, "fetchdata")}
	})
	if err != nil {
		return err
	}
	record("fetch", "rkt fetch (signed, cold store)", floor, d, "<= 1.5x floor")
	return nil
}
