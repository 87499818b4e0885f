package ns

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1/podsetup"
)

// userns is the pod's user namespace mapping (--private-users): pod root is
// host uid shift, and count IDs are mapped.
type userns struct {
	shift, count int
}

func parseUserns(s string) (*userns, error) {
	if s == "" {
		return nil, nil
	}
	a, b, ok := strings.Cut(s, ":")
	shift, err1 := strconv.Atoi(a)
	count, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || shift <= 0 || count <= 0 {
		return nil, fmt.Errorf("--private-users=%q: want SHIFT:COUNT", s)
	}
	return &userns{shift, count}, nil
}

func (u *userns) sysProcAttr(a *unixSysProcAttr) {
	m := []unixIDMap{{ContainerID: 0, HostID: u.shift, Size: u.count}}
	a.Cloneflags |= unix.CLONE_NEWUSER
	a.UidMappings, a.GidMappings = m, m
	// The launcher sets supplementary groups, which needs setgroups allowed.
	a.GidMappingsEnableSetgroups = true
	// The child starts as host root, which the namespace does not map: it
	// would lose every capability at exec. Becoming the namespace's root
	// (host uid shift) first keeps them (user_namespaces(7), execve).
	a.Credential = &unixCredential{Uid: 0, Gid: 0}
}

// prepareUserns adapts the plan to a pod in its own user namespace: cgroup
// hierarchies cannot be mounted there, so they are bind-mounted from the
// host; what the pod's root must be able to write (its cgroups, empty
// volumes, notify dirs) is handed to the shifted root.
func (p *pod) prepareUserns(u *userns, setup *podsetup.Config) error {
	// The pod's first process runs as the shifted root. It starts in the
	// pod directory and finds its rootfs relative to it (podRelative), so
	// it needs to search that directory only: root:shift 0710 (as stage0
	// leaves it). The data dir above stays root-only.
	if err := os.Lchown(p.dir, 0, u.shift); err != nil {
		return err
	}
	if err := os.Chmod(p.dir, 0o710); err != nil {
		return err
	}
	p.podRelative(setup)
	for i, m := range setup.Mounts {
		if m.FSType == "cgroup" {
			// Target is /sys/fs/cgroup/<controllers>, the host's layout.
			setup.Mounts[i] = podsetup.Mount{Source: m.Target, Target: m.Target, Flags: unix.MS_BIND}
		}
	}
	if p.cg != nil {
		children := []string{"init.scope"}
		for _, ra := range p.manifest.Apps {
			children = append(children, ra.Name.String())
		}
		for _, d := range p.cg.Dirs() {
			for _, c := range children {
				dir := filepath.Join(d, c)
				for _, f := range []string{"", "cgroup.procs", "tasks", "cgroup.subtree_control"} {
					if err := os.Lchown(filepath.Join(dir, f), u.shift, u.shift); err != nil && !os.IsNotExist(err) {
						return fmt.Errorf("delegate cgroup %s: %w", dir, err)
					}
				}
			}
		}
	}
	// What stage1 itself created in the apps' rootfs (/etc/hosts) belongs to
	// the pod's root too.
	for _, ra := range p.manifest.Apps {
		for _, f := range []string{"etc", "etc/hosts"} {
			path := filepath.Join(p.appRootfs(ra.Name.String()), f)
			var st unix.Stat_t
			if unix.Lstat(path, &st) == nil && int(st.Uid) < u.shift {
				os.Lchown(path, int(st.Uid)+u.shift, int(st.Gid)+u.shift)
			}
		}
	}
	for _, dir := range []string{p.layout().InStage1(layout.RktDir), p.layout().SharedVolumes()} {
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			var st unix.Stat_t
			if unix.Lstat(path, &st) == nil && int(st.Uid) < u.shift {
				os.Lchown(path, int(st.Uid)+u.shift, int(st.Gid)+u.shift)
			}
			return nil
		})
	}
	return nil
}

// asPodRoot runs fn, which writes into the pod's rootfs from the host, with
// the filesystem identity of the pod's root when the pod has its own user
// namespace: its rootfs may be idmapped, where host root cannot create files
// (EOVERFLOW), and either way the files then belong to the pod's root.
// setfsuid(2) is per thread; this runs on the run entrypoint's main thread,
// locked for the process's life.
func (p *pod) asPodRoot(fn func() error) error {
	u, err := parseUserns(p.args.PrivateUsers)
	if err != nil || u == nil {
		if err != nil {
			return err
		}
		return fn()
	}
	unix.Setfsgid(u.shift)
	unix.Setfsuid(u.shift)
	// A non-zero fsuid drops the filesystem capabilities from the effective
	// set; without CAP_DAC_READ_SEARCH the host path to the pod (root-only
	// directories) could not be walked. Setting the fsuid back to 0 below
	// restores them anyway (capabilities(7), "Effect of user ID changes").
	raiseEffective()
	defer func() {
		unix.Setfsuid(0)
		unix.Setfsgid(0)
	}()
	return fn()
}

// raiseEffective copies this thread's permitted capabilities into its
// effective set.
func raiseEffective() {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return
	}
	data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
	unix.Capset(&hdr, &data[0])
}

// podRelative rewrites the paths of the pod setup that lie in the pod
// directory as relative to it. The setup process runs as the pod's root,
// an unprivileged host uid, from the pod directory (its working
// directory): a relative path is walked from there, and the root-only
// directories above the pod are never searched.
func (p *pod) podRelative(setup *podsetup.Config) {
	setup.Root = p.relPath(setup.Root)
	for i := range setup.Mounts {
		setup.Mounts[i].Source = p.relPath(setup.Mounts[i].Source)
	}
	for i := range setup.Apps {
		a := &setup.Apps[i]
		a.Rootfs = p.relPath(a.Rootfs)
		for j := range a.Binds {
			a.Binds[j].Source = p.relPath(a.Binds[j].Source)
		}
		for j := range a.Mounts {
			a.Mounts[j].Source = p.relPath(a.Mounts[j].Source)
		}
	}
}

// relPath returns path relative to the pod directory ("./stage1/rootfs")
// when it lies in it, else path unchanged.
func (p *pod) relPath(path string) string {
	rel, err := filepath.Rel(p.dir, path)
	if !filepath.IsAbs(path) || err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return path
	}
	return "./" + rel
}
