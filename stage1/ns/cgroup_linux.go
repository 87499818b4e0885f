package ns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1/cgroups"

	"github.com/rkt-ng/rkt/stage1/podsetup"
)

// setupCgroups creates the pod's cgroup under the cgroup rkt runs in (so a
// pod started by a systemd unit stays in the unit),
// and records it for gc; execute applies the plan's limits. Without usable
// cgroups the pod runs without them and the limits are reported as not
// applied.
func (p *pod) setupCgroups() error {
	cg, err := cgroups.NewPod(p.args.UUID, cgroups.WithLogger(p.log))
	if errors.Is(err, cgroups.ErrNoCgroups) {
		p.log.Warn("no cgroup hierarchy found; pod runs without cgroups")
		return nil
	}
	if err != nil {
		return fmt.Errorf("create pod cgroup: %w", err)
	}
	if err := atomicfile.Replace(p.layout().Subcgroup(), []byte(cg.Path()), 0o644); err != nil {
		return err
	}
	p.cg = cg
	if !p.args.DisablePaths {
		if err := cg.RestrictDevices(); errors.Is(err, cgroups.ErrNoDevicePolicy) {
			p.log.Warn("device policy not enforced", "pod", p.args.UUID, "err", err)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// appCgroup declares an app's cgroup with its limits and returns the files
// the app's launcher joins it through. On v2 the cgroup is created, and its
// limits applied, by placeInit (EnableControllers) after the pod's init is
// cloned into its cgroup namespace: enabling the app controllers earlier
// would make the pod cgroup refuse the clone's parent (EBUSY).
func (p *pod) appCgroup(name string, l cgroups.Limits) ([]string, error) {
	if p.cg == nil {
		return nil, nil
	}
	a, err := p.cg.PlanApp(name, l)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	return a.JoinFiles(), nil
}

// cgroupMounts is the pod's view of its cgroups, as setup mounts.
//
// The source of a bind mount in cgroups.MountSpec is a path inside the pod's
// root (a cgroup directory of the hierarchy just mounted there), and the
// setup child mounts before pivot_root: it is resolved under the root here.
// Left as is it would name the host's /sys/fs/cgroup, which on v2 is the
// root of the host's hierarchy (where /sys/fs/cgroup/init.scope is systemd's
// own cgroup, and the app cgroups do not exist).
func (p *pod) cgroupMounts() []podsetup.Mount {
	if p.cg == nil {
		return nil
	}
	var out []podsetup.Mount
	for _, m := range p.cg.Mounts() {
		src := m.Source
		if m.Flags&unix.MS_BIND != 0 && m.Flags&unix.MS_REMOUNT == 0 {
			src = filepath.Join(p.root(), m.Source)
		}
		out = append(out, podsetup.Mount{Source: src, Target: m.Target, FSType: m.FSType, Flags: m.Flags, Data: m.Data})
	}
	return out
}

// ownUnifiedCgroup is the cgroup2 directory this process is in.
func ownUnifiedCgroup() (string, error) {
	l, err := cgroups.Detect()
	if err != nil {
		return "", err
	}
	if len(l.Hierarchies) == 0 {
		return "", errors.New("no cgroup2 hierarchy")
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rel, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			h := l.Hierarchies[0]
			r, err := filepath.Rel(h.Root, rel)
			if err != nil || strings.HasPrefix(r, "..") {
				return "", fmt.Errorf("own cgroup %s is outside the visible hierarchy", rel)
			}
			return filepath.Join(h.Mountpoint, r), nil
		}
	}
	return "", errors.New("no cgroup2 entry in /proc/self/cgroup")
}

// enterForClone, on cgroup v2, moves this process into the pod cgroup so
// that a child cloned with CLONE_NEWCGROUP gets a cgroup namespace rooted
// there; the returned function moves this process back (rkt's PID stays in
// the cgroup it was started in, e.g. its systemd unit's).
func (p *pod) enterForClone() (back func() error, err error) {
	if p.cg == nil || p.cg.Mode() != cgroups.Unified {
		return nil, nil
	}
	own, err := ownUnifiedCgroup()
	if err != nil {
		return nil, err
	}
	if err := p.cg.Enter(os.Getpid()); err != nil {
		return nil, err
	}
	return func() error {
		return os.WriteFile(filepath.Join(own, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
	}, nil
}

// placeInit puts the pod's init (the setup child, later stage2) in the
// pod's init leaf; on v2 it is there already and this moves it to the leaf.
func (p *pod) placeInit(pid int) error {
	if p.cg == nil {
		return nil
	}
	if p.cg.Mode() == cgroups.Unified {
		return p.cg.EnableControllers()
	}
	// On v1 the init joins its leaf itself (initProcsFiles) by moving the
	// one thread that starts apps, which costs the kernel no RCU grace
	// period, unlike moving a whole process (~10 ms on a VM).
	return nil
}

// initProcsFiles are, on cgroup v1, the files through which the pod's init
// joins its leaf from inside the pod.
func (p *pod) initProcsFiles() []string {
	if p.cg == nil || p.cg.Mode() == cgroups.Unified {
		return nil
	}
	return p.cg.Init().JoinFiles()
}

// reportOOM tells the user which apps the kernel OOM-killed.
func (p *pod) reportOOM() {
	if p.cg == nil || p.manifest == nil {
		return
	}
	for _, ra := range p.manifest.Apps {
		a, err := p.cg.App(ra.Name.String())
		if err != nil {
			continue
		}
		if oom, err := a.OOMKilled(); err == nil && oom {
			fmt.Fprintf(os.Stderr, "rkt: app %s was killed by the kernel OOM killer (memory limit reached)\n", ra.Name)
		}
	}
}

// removeCgroups kills what is left of the pod and removes its cgroups,
// from the record in the pod directory (so gc can do it after a crash).
func removeCgroups(ctx context.Context, podDir string) error {
	b, err := os.ReadFile(layout.Dir(podDir).Subcgroup())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	cg, err := cgroups.Open(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	return cg.Remove(ctx)
}
