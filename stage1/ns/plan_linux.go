package ns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/rkt-ng/rkt/cni"
	"github.com/rkt-ng/rkt/internal/copytree"
	"github.com/rkt-ng/rkt/internal/pty"
	"github.com/rkt-ng/rkt/stage1/plan"
	"github.com/rkt-ng/rkt/stage1/podsetup"
	"github.com/rkt-ng/rkt/stage1/podspec"
	"github.com/rkt-ng/rkt/stage2"
)

// configs builds the setup child's and stage2's configurations: it decides
// the pod's plan (stage1/plan, no system calls) and executes it.
func (p *pod) configs(info *cni.Info, extraEnv []string) (*podsetup.Config, *stage2.Config, error) {
	in := plan.Input{
		Manifest: p.manifest, Images: p.images, Options: p.opts, Args: p.args,
		Terminal: pty.IsTerminal(0), Cgroups: p.cg != nil, ExtraEnv: extraEnv, Users: rootfsUsers{p},
	}
	if info != nil {
		// The first network that returned DNS settings, as info.DNS().
		for _, n := range info.Networks {
			if d := n.DNS; !d.IsZero() {
				in.DNS = plan.DNS{Network: n.NetName, Nameservers: d.Nameservers, Domain: d.Domain, Search: d.Search, Options: d.Options}
				break
			}
		}
	}
	pl, err := plan.Build(in)
	if err != nil {
		return nil, nil, err
	}
	return p.execute(pl)
}

// rootfsUsers resolves apps' users in their images' /etc/passwd and /etc/group.
type rootfsUsers struct{ p *pod }

func (u rootfsUsers) Resolve(app, user, group string) (podspec.User, error) {
	return podspec.ResolveUser(u.p.appRootfs(app), user, group)
}

// execute does what the plan decided on this host: the pod's cgroup limits,
// the directories and files written as the pod's root, the empty volumes,
// and the app cgroups; it returns the mount plan of the setup child and the
// configuration of stage2, still without the netns, cgroup mounts and
// listeners (runPod, start).
func (p *pod) execute(pl *plan.Plan) (*podsetup.Config, *stage2.Config, error) {
	if p.cg != nil {
		if err := p.cg.SetLimits(pl.Limits); err != nil {
			return nil, nil, err
		}
	}
	if err := p.asPodRoot(func() error { return p.writeFiles(pl) }); err != nil {
		return nil, nil, err
	}
	setup := &podsetup.Config{Root: p.root(), Hostname: pl.Hostname, DisablePaths: p.args.DisablePaths, Sysctls: pl.Sysctls}
	s2 := &stage2.Config{PodUUID: p.args.UUID, StopTimeout: pl.StopTimeout, Debug: p.args.Debug, Mutable: p.args.Mutable,
		InitCgroupProcs: p.initProcsFiles()}
	vols := map[string]plan.Volume{}
	for _, v := range pl.Volumes {
		vols[v.Name] = v
	}
	for _, a := range pl.Apps {
		binds, err := p.binds(a.Binds, vols)
		if err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", a.Name, err)
		}
		app := a.Stage2
		if app.Proc.CgroupProcs, err = p.appCgroup(a.Name, a.Limits); err != nil {
			return nil, nil, err
		}
		for _, iso := range a.Ignored {
			fmt.Fprintf(os.Stderr, "rkt: app %s: isolator %s is not supported by this stage1 and was ignored\n", a.Name, iso)
		}
		setup.Apps = append(setup.Apps, podsetup.App{Name: a.Name, Rootfs: p.appRootfs(a.Name), ReadOnly: a.ReadOnly, Binds: binds})
		s2.Apps = append(s2.Apps, app)
	}
	return setup, s2, nil
}

// writeFiles creates the plan's directories and writes its files, inside
// the pod's root or an app's rootfs (paths resolved within it).
func (p *pod) writeFiles(pl *plan.Plan) error {
	for _, d := range pl.Dirs {
		full, err := securejoin.SecureJoin(p.root(), d)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(full, 0o755); err != nil {
			return err
		}
	}
	for _, f := range pl.Files {
		root := p.root()
		if f.App != "" {
			root = p.appRootfs(f.App)
		}
		if err := writeFile(root, f); err != nil {
			if f.App != "" {
				return fmt.Errorf("app %s: %w", f.App, err)
			}
			return err
		}
	}
	return nil
}

func writeFile(root string, f plan.File) error {
	full, err := securejoin.SecureJoin(root, f.Path)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(full); err == nil && f.IfMissing {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, []byte(f.Data), f.Mode)
}

// binds gives an app's binds their host paths, creating the empty volumes
// they mount.
func (p *pod) binds(bs []plan.Bind, vols map[string]plan.Volume) ([]podsetup.Bind, error) {
	out := make([]podsetup.Bind, 0, len(bs))
	for _, b := range bs {
		src := b.Source
		switch b.Kind {
		case plan.HostVolume:
			fi, err := os.Lstat(b.Source)
			if err != nil {
				return nil, fmt.Errorf("volume %s: host source: %w", b.Volume, err)
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				return nil, fmt.Errorf("volume %s: host source %s is a symlink", b.Volume, b.Source)
			}
		case plan.EmptyVolume:
			var err error
			if src, err = p.ensureVolume(vols[b.Source]); err != nil {
				return nil, err
			}
		case plan.PodFile, plan.PodDir:
			src = p.layout().InStage1(b.Source)
		case plan.HostFile:
		default:
			return nil, fmt.Errorf("bind %s: unknown source kind %q", b.Target, b.Kind)
		}
		file := b.File()
		if b.Kind == plan.HostVolume || b.Kind == plan.EmptyVolume {
			fi, err := os.Stat(src)
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", b.Volume, err)
			}
			file = !fi.IsDir()
		}
		out = append(out, podsetup.Bind{Source: src, Target: b.Target, ReadOnly: b.ReadOnly, Recursive: b.Recursive, File: file})
	}
	return out, nil
}

// ensureVolume creates an empty volume in the pod directory (sharedVolumes/)
// at each of its mounts: the first one seeds it (plan.Volume.Seed) or makes
// it; every mount that did not seed it sets its mode and owner, as rkt-ng
// always has.
//
// Seeding never follows the image's symlinks (the path is resolved inside
// the app's rootfs, and the tree is copied as it is).
func (p *pod) ensureVolume(v plan.Volume) (string, error) {
	dir := p.layout().SharedVolume(v.Name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", err
	}
	if v.Seed != nil {
		seeded, err := p.seedVolume(dir, v.Seed.App, v.Seed.Path)
		if err != nil {
			return "", fmt.Errorf("volume %s: copy the image's %s: %w", v.Name, v.Seed.Path, err)
		}
		if seeded {
			return dir, nil
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	if err := os.Chmod(dir, v.Mode); err != nil {
		return "", err
	}
	if err := os.Lchown(dir, v.UID, v.GID); err != nil {
		return "", err
	}
	return dir, nil
}

// seedVolume makes dir a copy of the directory at path in app's rootfs, if
// there is one and dir does not exist yet (a volume is seeded once). It
// reports whether it made dir.
func (p *pod) seedVolume(dir, app, path string) (bool, error) {
	if _, err := os.Lstat(dir); err == nil {
		return false, nil
	}
	src, err := securejoin.SecureJoin(p.appRootfs(app), path)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(src)
	if err != nil || !fi.IsDir() {
		return false, nil
	}
	tmp := dir + ".seeding"
	os.RemoveAll(tmp)
	if err := copytree.Copy(src, tmp); err != nil {
		os.RemoveAll(tmp)
		return false, err
	}
	return true, os.Rename(tmp, dir)
}
