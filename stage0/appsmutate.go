package stage0

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage0/store"
	"github.com/rkt-ng/rkt/stage1"
)

// mutablePod is a running sandbox held under its apps lock, with its
// manifest, options and stage1 entrypoints.
type mutablePod struct {
	pod      *pods.Pod
	lock     *flock.Lock
	manifest *schema.PodManifest
	opts     stage1.Options
	ep       stage1.Entrypoints
}

func (m *mutablePod) Close() { m.lock.Close() }

// openMutable finds a running sandbox and takes its apps lock (pods.Pod.LockApps).
func (c *Config) openMutable(ref string) (*mutablePod, error) {
	p, err := c.sandbox(ref)
	if err != nil {
		return nil, err
	}
	if p.State() != pods.Running {
		return nil, fmt.Errorf("pod %s: %w: %s, want running", p.UUID, pods.ErrBadState, p.State())
	}
	ep, err := c.stage1Entrypoints(p)
	if err != nil {
		return nil, err
	}
	if err := ep.Mutable(); err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	l, err := p.LockApps()
	if err != nil {
		return nil, err
	}
	m := &mutablePod{pod: p, lock: l, ep: ep}
	// The pod may have ended while we waited for the lock.
	if q, err := c.pod(p.UUID); err != nil || q.State() != pods.Running {
		l.Close()
		return nil, fmt.Errorf("pod %s is no longer running", p.UUID)
	}
	b, err := os.ReadFile(p.ManifestPath())
	if err == nil {
		m.manifest, err = manifests.DecodePod(b)
	}
	if err == nil {
		m.opts, err = stage1.ReadOptions(p.OptionsPath())
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	return m, nil
}

// app returns the app of the manifest, or ErrNoApp.
func (m *mutablePod) app(name string) (*schema.RuntimeApp, error) {
	for i := range m.manifest.Apps {
		if m.manifest.Apps[i].Name.String() == name {
			return &m.manifest.Apps[i], nil
		}
	}
	return nil, fmt.Errorf("pod %s: app %s: %w", m.pod.UUID, name, ErrNoApp)
}

// save writes the manifest and the options (stage0's files).
// openMutableApp is openMutable for a call on one app of the sandbox: the
// name must be valid and the app in the pod.
func (c *Config) openMutableApp(ref, app string) (*mutablePod, error) {
	if _, err := stage1.AppName(app); err != nil {
		return nil, err
	}
	m, err := c.openMutable(ref)
	if err != nil {
		return nil, err
	}
	if _, err := m.app(app); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// running tells whether app was started and has not finished.
func (m *mutablePod) running(app string) bool {
	r := m.pod.AppRecord(app)
	return !r.Started.IsZero() && r.Finished.IsZero()
}

func (m *mutablePod) save() error {
	b, err := json.Marshal(m.opts)
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(m.pod.OptionsPath(), b, 0o644); err != nil {
		return err
	}
	if b, err = m.manifest.MarshalJSON(); err != nil {
		return err
	}
	return atomicfile.Replace(m.pod.ManifestPath(), b, 0o640)
}

// run runs an app entrypoint with the pod directory as cwd. The stage1's
// own error line (rkt: ...) becomes the error; its other output (warnings)
// is passed on.
func (c *Config) runApp(ctx context.Context, m *mutablePod, rel string, a stage1.AppArgs) error {
	path, err := c.stage1Program(m.pod, rel)
	if err != nil {
		return err
	}
	a.UUID, a.Debug = m.pod.UUID, c.Debug
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, a.Argv()...)
	cmd.Dir = m.pod.Path()
	cmd.Stdout, cmd.Stderr = os.Stderr, &stderr
	// Interrupted, the entrypoint gets SIGTERM to finish cleanly.
	cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := ""
	if err != nil && len(lines) > 0 {
		last, lines = lines[len(lines)-1], lines[:len(lines)-1]
	}
	if rest := strings.TrimSpace(strings.Join(lines, "\n")); rest != "" {
		fmt.Fprintln(os.Stderr, rest)
	}
	if err == nil {
		return nil
	}
	if msg := strings.TrimPrefix(strings.TrimSpace(last), "rkt: "); msg != "" {
		return errors.New(msg)
	}
	return fmt.Errorf("app %s: stage1 %s: %w", a.App, rel, err)
}

// AppAdd adds an app to a running sandbox: it fetches and verifies the
// image as rkt fetch does, renders it, lays down its rootfs, adds it to the
// pod manifest (name unique in the pod) and has the stage1 check it
// (app/add). The app is created, not started. On failure the pod is as it
// was. It returns the app's name.
func (c *Config) AppAdd(ctx context.Context, ref string, spec AppSpec, env EnvSources, pullPolicy string) (string, error) {
	if spec.Name != "" {
		if _, err := stage1.AppName(spec.Name); err != nil {
			return "", err
		}
	}
	if err := checkCRILogPath(spec.CRILogPath); err != nil {
		return "", err
	}
	m, err := c.openMutable(ref)
	if err != nil {
		return "", err
	}
	defer m.Close()
	p := m.pod
	if spec.CRILogPath != "" && m.ep.AppReopenLog == "" {
		return "", fmt.Errorf("pod %s: its stage1 cannot write CRI logs (annotation %s missing)", p.UUID, stage1.AnnotationAppReopenLog)
	}
	if (spec.Stdin || spec.StdinOnce || spec.TTY) && m.ep.AppAttach == "" {
		return "", fmt.Errorf("pod %s: its stage1 cannot keep an app's stdin open (annotation %s missing)", p.UUID, stage1.AnnotationAppAttach)
	}
	s, err := c.Store()
	if err != nil {
		return "", err
	}
	// The image is held from its fetch, and its tree from its render, until
	// the pod records them (treeStoreID, then the pod manifest), so that
	// image and tree gc beside us leave them alone (store.HoldImage,
	// store.Acquire).
	var held imageHolds
	defer held.release()
	id, err := held.fetch(ctx, s, func() (string, error) { return c.fetchImage(ctx, s, spec.Image, spec.Signature, pullPolicy) })
	if err != nil {
		return "", err
	}
	if err := pausepoint.Reach(ctx, pausepoint.ImagesResolved); err != nil {
		return "", err
	}
	im, err := s.Manifest(id)
	if err != nil {
		return "", err
	}
	taken := map[string]bool{}
	for _, ra := range m.manifest.Apps {
		taken[ra.Name.String()] = true
	}
	name, err := appName(spec, im, taken)
	if err != nil {
		return "", fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	ra, err := runtimeApp(spec, id, im, name, env)
	if err != nil {
		return "", err
	}
	if len(spec.Volumes) > 0 {
		// AppRm removes them with the app, so that no later app's image
		// can name its mount point after them.
		var names []string
		for _, v := range spec.Volumes {
			names = append(names, v.Name.String())
		}
		ra.Annotations.Set(appVolumesAnnotation, strings.Join(names, ","))
	}
	vols := map[types.ACName]types.Volume{}
	for _, v := range m.manifest.Volumes {
		vols[v.Name] = v
	}
	for _, v := range spec.Volumes {
		if _, ok := vols[v.Name]; ok {
			return "", fmt.Errorf("volume %s: pod %s has a volume of that name already", v.Name, p.UUID)
		}
		if v.Kind != "host" && v.Kind != "empty" {
			return "", fmt.Errorf("volume %s: kind %q, want host or empty", v.Name, v.Kind)
		}
		vols[v.Name] = v
	}
	podVolumes := append(append([]types.Volume{}, m.manifest.Volumes...), spec.Volumes...)
	for _, mt := range ra.Mounts {
		if _, ok := vols[mt.Volume]; !ok {
			return "", fmt.Errorf("--mount volume=%s: no such volume in pod %s; declare it with rkt app sandbox --volume", mt.Volume, p.UUID)
		}
	}
	added, implicit := fillMounts(&ra, vols, false, len(m.manifest.Apps)+1)
	c.warnImplicit(implicit)
	grant := stage1.AppOptions{UserIsolators: flagIsolators(spec), GrantedBy: stage1.GrantedByFlags}
	one := &schema.PodManifest{Apps: schema.AppList{ra}, Volumes: append(append([]types.Volume{}, podVolumes...), added...)}
	if err := checkMounts(one); err != nil {
		return "", err
	}
	if !m.ep.ImagePolicy {
		if err := refuseImageGrants(one, map[string]stage1.AppOptions{name.String(): grant}, "of pod "+p.UUID); err != nil {
			return "", err
		}
	}
	oldManifest, oldOpts := *m.manifest, m.opts
	tree, hold, err := s.Acquire(ctx, id)
	if err != nil {
		return "", fmt.Errorf("render app %s: %w", name, err)
	}
	defer hold.Release()
	release := func() { c.releaseApp(p, name.String(), tree.ID) }
	if err := c.layDownApp(p, name.String(), im, tree, m.opts.NoOverlay); err != nil {
		release()
		return "", err
	}
	m.manifest.Apps = append(m.manifest.Apps, ra)
	m.manifest.Volumes = append(podVolumes, added...)
	m.opts.Apps = withGrants(stopSignals(cloneAppOptions(m.opts.Apps), one), map[string]stage1.AppOptions{name.String(): grant})
	if spec.CRILogPath != "" || spec.Stdin || spec.TTY {
		ao := m.opts.Apps[name.String()]
		ao.CRILogPath, ao.Stdin, ao.StdinOnce, ao.TTY = spec.CRILogPath, spec.Stdin, spec.Stdin && spec.StdinOnce, spec.TTY
		m.opts.Apps[name.String()] = ao
	}
	if err := m.save(); err != nil {
		release()
		return "", err
	}
	// Recorded: Touch below takes the image's exclusive lock.
	hold.Release()
	held.release()
	if err := c.runApp(ctx, m, m.ep.AppAdd, stage1.AppArgs{App: name.String()}); err != nil {
		*m.manifest, m.opts = oldManifest, oldOpts
		if serr := m.save(); serr != nil {
			err = errors.Join(err, serr)
		}
		release()
		return "", err
	}
	s.Touch(ctx, id)
	return name.String(), nil
}

// appVolumesAnnotation, on an app added to a sandbox, names the volumes it
// brought (AppSpec.Volumes), comma-separated.
const appVolumesAnnotation = "rkt-ng.io/app-volumes"

// dropAppVolumes returns the pod's volumes without those of names that no
// remaining app mounts.
func dropAppVolumes(pm *schema.PodManifest, names []string) []types.Volume {
	if len(names) == 0 {
		return pm.Volumes
	}
	used := map[types.ACName]bool{}
	for _, ra := range pm.Apps {
		for _, mt := range ra.Mounts {
			used[mt.Volume] = true
		}
	}
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	out := make([]types.Volume, 0, len(pm.Volumes))
	for _, v := range pm.Volumes {
		if drop[v.Name.String()] && !used[v.Name] {
			continue
		}
		out = append(out, v)
	}
	return out
}

func cloneAppOptions(in map[string]stage1.AppOptions) map[string]stage1.AppOptions {
	out := make(map[string]stage1.AppOptions, len(in)+1)
	for k, v := range in {
		out[k] = v
	}
	return out
}

// layDownApp writes an app's appsinfo and lays down its rootfs, as prepare
// does for the pod's first apps.
func (c *Config) layDownApp(p *pods.Pod, name string, im *schema.ImageManifest, tree store.Tree, noOverlay bool) error {
	if err := os.MkdirAll(p.AppInfoDir(name), 0o755); err != nil {
		return err
	}
	b, err := im.MarshalJSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.AppManifestPath(name), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(p.AppTreeStoreIDPath(name), []byte(tree.ID), 0o644); err != nil {
		return err
	}
	if err := layDown(p, tree, p.AppRootfsPath(name), p.OverlayDir(tree.ID), name, noOverlay, nil); err != nil {
		return fmt.Errorf("app %s rootfs: %w", name, err)
	}
	return nil
}

// releaseApp undoes layDownApp: unmounts and removes the app's rootfs, its
// overlay dirs and its appsinfo. Its log (in the stage1 rootfs) stays.
func (c *Config) releaseApp(p *pods.Pod, name, treeID string) {
	rootfs := p.AppRootfsPath(name)
	if err := mountinfo.UnmountAll(rootfs); err != nil {
		c.logger().Warn("unmount app rootfs", "pod", p.UUID, "app", name, "err", err)
	}
	d := layout.Dir(p.Path())
	for _, dir := range []string{filepath.Dir(rootfs), d.OverlayUpper(treeID, name), d.OverlayWork(treeID, name), p.AppInfoDir(name)} {
		if err := os.RemoveAll(dir); err != nil {
			c.logger().Warn("remove app files", "pod", p.UUID, "app", name, "err", err)
		}
	}
}

// AppStart starts an app that was added and never started.
func (c *Config) AppStart(ctx context.Context, ref, app string) error {
	m, err := c.openMutableApp(ref, app)
	if err != nil {
		return err
	}
	defer m.Close()
	if r := m.pod.AppRecord(app); !r.Started.IsZero() || !r.Finished.IsZero() {
		return fmt.Errorf("pod %s: app %s was started already; remove it and add it again", m.pod.UUID, app)
	}
	return c.runApp(ctx, m, m.ep.AppStart, stage1.AppArgs{App: app})
}

// AppStop stops a running app: its stop signal, then SIGKILL after the
// pod's stop timeout (at once with force). It returns once the app exited;
// its exit status is in AppStatus.
func (c *Config) AppStop(ctx context.Context, ref, app string, force bool) error {
	m, err := c.openMutableApp(ref, app)
	if err != nil {
		return err
	}
	defer m.Close()
	if !m.running(app) {
		return fmt.Errorf("pod %s: app %s is not running", m.pod.UUID, app)
	}
	return c.runApp(ctx, m, m.ep.AppStop, stage1.AppArgs{App: app, Force: force})
}

// AppRm removes an app from a running sandbox, stopping it first if it
// runs: the stage1 unmounts it in the pod and removes its cgroup (app/rm),
// then it leaves the pod manifest and its rootfs is unmounted and released.
// Its log stays until the pod is removed.
func (c *Config) AppRm(ctx context.Context, ref, app string) error {
	m, err := c.openMutableApp(ref, app)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.running(app) {
		if err := c.runApp(ctx, m, m.ep.AppStop, stage1.AppArgs{App: app}); err != nil {
			return err
		}
	}
	if err := c.runApp(ctx, m, m.ep.AppRm, stage1.AppArgs{App: app}); err != nil {
		return err
	}
	treeID, _ := os.ReadFile(m.pod.AppTreeStoreIDPath(app))
	var own []string
	for i := range m.manifest.Apps {
		if m.manifest.Apps[i].Name.String() == app {
			if v, ok := m.manifest.Apps[i].Annotations.Get(appVolumesAnnotation); ok {
				own = strings.Split(v, ",")
			}
			m.manifest.Apps = append(m.manifest.Apps[:i:i], m.manifest.Apps[i+1:]...)
			break
		}
	}
	m.manifest.Volumes = dropAppVolumes(m.manifest, own)
	m.opts.Apps = cloneAppOptions(m.opts.Apps)
	delete(m.opts.Apps, app)
	if err := m.save(); err != nil {
		return err
	}
	c.releaseApp(m.pod, app, strings.TrimSpace(string(treeID)))
	return nil
}
