package stage0

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/copytree"
	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage0/store"
	"github.com/rkt-ng/rkt/stage1"
)

// PrepareConfig is everything `rkt prepare` and `rkt run` need to build a pod.
type PrepareConfig struct {
	Apps        []AppSpec
	PodManifest string   // --pod-manifest
	Volumes     []string // --volume
	Ports       []string // --port
	PodName     string   // --pod-name
	Stage1      Stage1Options
	NoOverlay   bool
	// PrivateUsers runs the pod in a user namespace of its own UID range;
	// the rootfs are overlays of idmapped layers, or copies with shifted
	// owners where the kernel cannot (see privateUsers).
	PrivateUsers bool
	Env          EnvSources
	PullPolicy   string
	// DNS are the --dns* and --hosts-entry flags, checked and written to
	// Options before anything else is done.
	DNS DNSFlags
	// Options go to stage1-options.json.
	Options stage1.Options
	// Sandbox makes a mutable pod (rkt app sandbox): it may have no apps,
	// and its stage1 must have the app-level entrypoints.
	Sandbox bool
	// Annotations, UserAnnotations and UserLabels are the pod's own
	// (rkt app sandbox --annotation, --user-annotation, --user-label).
	Annotations, UserAnnotations, UserLabels map[string]string
	// Sysctls are the pod's namespaced net.* sysctls (rkt app sandbox
	// --sysctl), an os/unix/sysctl isolator of the pod manifest.
	Sysctls map[string]string
}

// prepared is a pod being built and what it was built from.
type prepared struct {
	pod      *pods.Pod
	manifest *schema.PodManifest
	stage1   *schema.ImageManifest
	// grants say, per app, which isolators the user gave (the others
	// came from the image): stage1-options.json apps.<app>.userIsolators.
	grants map[string]stage1.AppOptions
	// idmap, with --private-users, mounts the pod's trees idmapped; nil
	// when the kernel cannot (the trees are then copied and shifted).
	idmap *idmapper
	shift int
}

// Prepare creates a pod in the prepare state, locked, with its manifest
// written and its rootfs mounted. On failure nothing is left behind.
func (c *Config) Prepare(ctx context.Context, pc PrepareConfig) (*pods.Pod, error) {
	pr, err := c.prepare(ctx, pc)
	if err != nil {
		return nil, err
	}
	return pr.pod, nil
}

func (c *Config) prepare(ctx context.Context, pc PrepareConfig) (*prepared, error) {
	if err := pc.DNS.apply(&pc.Options); err != nil {
		return nil, fmt.Errorf("dns flags: %w", err)
	}
	s, err := c.Store()
	if err != nil {
		return nil, err
	}
	// App images first: an image refused for its signature leaves the store
	// exactly as it was.
	// Each image is held from its fetch until the pod records it (in its
	// pod or stage1 manifest, written by fill), so that image gc beside us
	// cannot remove it in between (store.HoldImage).
	var held imageHolds
	defer held.release()
	pm, images, grants, err := c.podManifest(ctx, s, &held, pc)
	if err != nil {
		return nil, err
	}
	c.logger().Debug("images resolved", "apps", len(pm.Apps))
	stage1ID, err := held.fetch(ctx, s, func() (string, error) { return c.ResolveStage1(ctx, s, pc.Stage1) })
	if err != nil {
		return nil, err
	}
	if err := pausepoint.Reach(ctx, pausepoint.ImagesResolved); err != nil {
		return nil, err
	}
	s1, err := s.Manifest(stage1ID)
	if err != nil {
		return nil, err
	}
	ep, err := stage1.EntrypointsOf(s1)
	if err != nil {
		return nil, err
	}
	if pc.Sandbox {
		if err := ep.Mutable(); err != nil {
			return nil, fmt.Errorf("stage1 %s: %w", s1.Name, err)
		}
	}
	if !ep.ImagePolicy {
		if err := refuseImageGrants(pm, grants, s1.Name.String()); err != nil {
			return nil, err
		}
	}
	pd, err := c.Pods()
	if err != nil {
		return nil, err
	}
	p, err := pd.Create(pc.PodName)
	if err != nil {
		return nil, err
	}
	pr := &prepared{pod: p, manifest: pm, stage1: s1, grants: grants}
	if pc.PrivateUsers {
		if err := c.privateUsers(pd, pr, &pc); err != nil {
			discard(p)
			return nil, err
		}
		if pr.idmap != nil {
			defer pr.idmap.Close()
		}
	}
	if err := c.fill(ctx, s, pr, stage1ID, images, pc); err != nil {
		discard(p)
		return nil, err
	}
	if pc.PrivateUsers && pr.idmap == nil {
		if err := copytree.Shift(p.Stage1RootfsPath(), pr.shift); err != nil {
			discard(p)
			return nil, fmt.Errorf("--private-users: %w", err)
		}
	}
	if err := pausepoint.Reach(ctx, pausepoint.PodFilled); err != nil {
		discard(p)
		return nil, err
	}
	c.logger().Debug("pod prepared", "pod", p.UUID)
	return pr, nil
}

// discard removes a pod whose preparation failed. If that is impossible
// (a busy mount), the pod is left as an aborted prepare for gc.
func discard(p *pods.Pod) {
	if err := mountinfo.UnmountAll(p.Path()); err == nil {
		if os.RemoveAll(p.Path()) == nil {
			p.Close()
			return
		}
	}
	p.ToAbortedPrepare()
}

// podManifest builds (or loads) the reified pod manifest and resolves every
// image it names to an ID in the store. grants say, per app, which
// isolators the user gave and how (stage1.AppOptions).
func (c *Config) podManifest(ctx context.Context, s *store.Store, held *imageHolds, pc PrepareConfig) (pm *schema.PodManifest, images map[string]string, grants map[string]stage1.AppOptions, err error) {
	images = map[string]string{} // app name -> image ID
	grants = map[string]stage1.AppOptions{}
	if pc.PodManifest != "" {
		pm, images, err = c.loadPodManifest(ctx, s, held, pc, images, grants)
		return pm, images, grants, err
	}
	if len(pc.Apps) == 0 && !pc.Sandbox {
		return nil, nil, nil, errors.New("no image given")
	}
	pm = schema.BlankPodManifest()
	pm.Apps = schema.AppList{}
	// An empty list, not null: the metadata service serves annotations as
	// stored, and appc clients compare them with the decoded manifest.
	pm.Annotations = types.Annotations{}
	if err := podAnnotations(pm, pc); err != nil {
		return nil, nil, nil, err
	}
	if err := podSysctls(pm, pc); err != nil {
		return nil, nil, nil, err
	}
	vols := map[types.ACName]types.Volume{}
	for _, vs := range pc.Volumes {
		v, err := ParseVolume(vs)
		if err != nil {
			return nil, nil, nil, err
		}
		if _, dup := vols[v.Name]; dup {
			return nil, nil, nil, fmt.Errorf("--volume %s: declared twice", v.Name)
		}
		vols[v.Name] = *v
		pm.Volumes = append(pm.Volumes, *v)
	}
	taken := map[string]bool{}
	for _, spec := range pc.Apps {
		id, err := held.fetch(ctx, s, func() (string, error) {
			return c.fetchImage(ctx, s, spec.Image, spec.Signature, pullPolicy(pc.PullPolicy))
		})
		if err != nil {
			return nil, nil, nil, err
		}
		im, err := s.Manifest(id)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := checkOSArch(im); err != nil {
			return nil, nil, nil, fmt.Errorf("image %s: %w", spec.Image, err)
		}
		name, err := appName(spec, im, taken)
		if err != nil {
			return nil, nil, nil, err
		}
		taken[name.String()] = true
		ra, err := runtimeApp(spec, id, im, name, pc.Env)
		if err != nil {
			return nil, nil, nil, err
		}
		grants[name.String()] = stage1.AppOptions{UserIsolators: flagIsolators(spec), GrantedBy: stage1.GrantedByFlags}
		for _, m := range ra.Mounts {
			if _, ok := vols[m.Volume]; !ok {
				return nil, nil, nil, fmt.Errorf("--mount volume=%s: no such volume; declare it with --volume", m.Volume)
			}
		}
		added, implicit := fillMounts(&ra, vols, false, len(pc.Apps))
		c.warnImplicit(implicit)
		pm.Volumes = append(pm.Volumes, added...)
		pm.Apps = append(pm.Apps, ra)
		images[name.String()] = id
	}
	if err := checkMounts(pm); err != nil {
		return nil, nil, nil, err
	}
	addP := addPorts
	if pc.Sandbox {
		addP = addSandboxPorts
	}
	if err := addP(pm, pc.Ports); err != nil {
		return nil, nil, nil, err
	}
	return pm, images, grants, nil
}

// imageHolds are the images a prepare holds (store.HoldImage) until its
// pod records them.
type imageHolds []*store.Hold

// maxFetchTries bounds how often a fetched image is fetched again because
// image gc removed it before it could be held; each lost try means a gc
// finished in between.
const maxFetchTries = 3

// fetch runs fetchFn, which returns an image ID in s, and holds that image.
func (h *imageHolds) fetch(ctx context.Context, s *store.Store, fetchFn func() (string, error)) (string, error) {
	for range maxFetchTries {
		id, err := fetchFn()
		if err != nil {
			return "", err
		}
		hold, err := s.HoldImage(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed by image gc between the fetch and the hold
		}
		if err != nil {
			return "", err
		}
		*h = append(*h, hold)
		return id, nil
	}
	return "", fmt.Errorf("image removed by image gc %d times before it could be held", maxFetchTries)
}

func (h *imageHolds) release() {
	for _, hold := range *h {
		hold.Release()
	}
	*h = nil
}

func pullPolicy(p string) string {
	if p == "" {
		return "new"
	}
	return p
}

// loadPodManifest reads --pod-manifest; its apps name images by ID or name.
func (c *Config) loadPodManifest(ctx context.Context, s *store.Store, held *imageHolds, pc PrepareConfig, images map[string]string, grants map[string]stage1.AppOptions) (*schema.PodManifest, map[string]string, error) {
	if len(pc.Apps) > 0 || len(pc.Volumes) > 0 {
		return nil, nil, errors.New("--pod-manifest cannot be combined with images, app flags or --volume")
	}
	b, err := os.ReadFile(pc.PodManifest)
	if err != nil {
		return nil, nil, fmt.Errorf("--pod-manifest: %w", err)
	}
	pm, err := manifests.DecodePod(b)
	if err != nil {
		return nil, nil, fmt.Errorf("--pod-manifest %s: %w", pc.PodManifest, err)
	}
	if len(pm.Apps) == 0 {
		return nil, nil, fmt.Errorf("--pod-manifest %s: no apps", pc.PodManifest)
	}
	userApps := make([]bool, len(pm.Apps))
	for i := range pm.Apps {
		ra := &pm.Apps[i]
		userApps[i] = ra.App != nil
		// The isolators of an app the user wrote are the user's; an app
		// taken from its image brings the image's, which grant nothing
		// beyond the default set (the stage1 checks them).
		g := stage1.AppOptions{GrantedBy: stage1.GrantedByPodManifest}
		if ra.App != nil {
			for _, iso := range ra.App.Isolators {
				g.UserIsolators = append(g.UserIsolators, iso.Name.String())
			}
		}
		grants[ra.Name.String()] = g
		ref := ra.Image.ID.String()
		if ra.Image.ID.Empty() {
			if ra.Image.Name == nil {
				return nil, nil, fmt.Errorf("--pod-manifest: app %s: image needs an id or a name", ra.Name)
			}
			ref = ra.Image.Name.String()
		}
		id, err := held.fetch(ctx, s, func() (string, error) { return c.fetchImage(ctx, s, ref, "", pullPolicy(pc.PullPolicy)) })
		if err != nil {
			return nil, nil, fmt.Errorf("--pod-manifest: app %s: %w", ra.Name, err)
		}
		im, err := s.Manifest(id)
		if err != nil {
			return nil, nil, err
		}
		if err := checkOSArch(im); err != nil {
			return nil, nil, fmt.Errorf("--pod-manifest: app %s: %w", ra.Name, err)
		}
		h, _ := types.NewHash(id)
		ra.Image.ID = *h
		if ra.Image.Name == nil {
			ra.Image.Name = &im.Name
		}
		if ra.App == nil {
			if im.App == nil {
				return nil, nil, fmt.Errorf("--pod-manifest: app %s: neither the pod nor image %s has an app", ra.Name, im.Name)
			}
			app := *im.App
			ra.App = &app
		}
		images[ra.Name.String()] = id
	}
	// appc: a mount point without a mount gets the pod's volume of the
	// same name. The app the user wrote in the pod manifest declared its
	// mount points; one taken from the image did not (see fillMounts).
	vols := map[types.ACName]types.Volume{}
	for _, v := range pm.Volumes {
		vols[v.Name] = v
	}
	for i := range pm.Apps {
		added, implicit := fillMounts(&pm.Apps[i], vols, userApps[i], len(pm.Apps))
		c.warnImplicit(implicit)
		pm.Volumes = append(pm.Volumes, added...)
	}
	if err := checkMounts(pm); err != nil {
		return nil, nil, fmt.Errorf("--pod-manifest %s: %w", pc.PodManifest, err)
	}
	return pm, images, nil
}

// checkMounts validates what the appc library leaves to the runtime: every
// mount names a declared volume, and no two mounts of an app overlap.
func checkMounts(pm *schema.PodManifest) error {
	vols := map[types.ACName]bool{}
	for _, v := range pm.Volumes {
		vols[v.Name] = true
	}
	for _, ra := range pm.Apps {
		seen := map[string]bool{}
		for _, m := range ra.Mounts {
			if !vols[m.Volume] && m.AppVolume == nil {
				return fmt.Errorf("app %s: mount %s uses undeclared volume %q", ra.Name, m.Path, m.Volume)
			}
			p := filepath.Clean(m.Path)
			if seen[p] {
				return fmt.Errorf("app %s: two mounts on %s", ra.Name, p)
			}
			seen[p] = true
		}
	}
	return nil
}

// fill writes the pod's files and lays down its rootfs.
func (c *Config) fill(ctx context.Context, s *store.Store, pr *prepared, stage1ID string, images map[string]string, pc PrepareConfig) error {
	p := pr.pod
	// A --private-users pod directory is root:<pod gid> 0710 (see
	// privateUsers), closed to the rkt group; the pod's root needs to
	// search stage1/ there.
	private := p.PrivateDirs()
	if pc.PrivateUsers {
		private = nil
	}
	for _, d := range private {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	b, err := pr.manifest.MarshalJSON()
	if err != nil {
		return fmt.Errorf("pod manifest: %w", err)
	}
	if err := atomicfile.Replace(p.ManifestPath(), b, 0o640); err != nil {
		return err
	}
	// Each tree is held from render until the pod records it (its tree ID,
	// and the image in the pod or stage1 manifest): from then on image and
	// tree gc see the record (store.Hold).
	s1tree, hold, err := s.Acquire(ctx, stage1ID)
	if err != nil {
		return fmt.Errorf("render stage1: %w", err)
	}
	defer hold.Release()
	if err := os.MkdirAll(filepath.Dir(p.Stage1ManifestPath()), 0o755); err != nil {
		return err
	}
	if b, err = pr.stage1.MarshalJSON(); err != nil {
		return err
	}
	if err := os.WriteFile(p.Stage1ManifestPath(), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(p.Stage1TreeStoreIDPath(), []byte(s1tree.ID), 0o644); err != nil {
		return err
	}
	hold.Release()
	if !pc.NoOverlay {
		if err := os.WriteFile(p.OverlayPreparedPath(), nil, 0o644); err != nil {
			return err
		}
	}
	if err := layDown(p, s1tree, p.Stage1RootfsPath(), p.OverlayDir(s1tree.ID), "", pc.NoOverlay, pr.idmap); err != nil {
		return fmt.Errorf("stage1 rootfs: %w", err)
	}
	if pc.Sandbox {
		// Its apps come later; rkt app takes the apps lock on this directory.
		if err := os.MkdirAll(p.AppsInfoDir(), 0o755); err != nil {
			return err
		}
	}
	for _, ra := range pr.manifest.Apps {
		name := ra.Name.String()
		id := images[name]
		tree, err := c.recordApp(ctx, s, p, name, id)
		if err != nil {
			return err
		}
		if err := layDown(p, tree, p.AppRootfsPath(name), p.OverlayDir(tree.ID), name, pc.NoOverlay, pr.idmap); err != nil {
			return fmt.Errorf("app %s rootfs: %w", name, err)
		}
		s.Touch(ctx, id)
	}
	opts := pc.Options
	opts.Apps = stopSignals(opts.Apps, pr.manifest)
	opts.Apps = withGrants(opts.Apps, pr.grants)
	if pc.PodManifest == "" {
		opts.SeedVolumes = implicitVolumes(pr.manifest, pc.Volumes)
	}
	opts.DataDir, opts.SystemConfig, opts.NoOverlay = c.Dir, c.SystemConfig, pc.NoOverlay
	if b, err = json.Marshal(opts); err != nil {
		return err
	}
	return atomicfile.Replace(p.OptionsPath(), b, 0o644)
}

// recordApp renders app name's image id and records its manifest and tree
// in the pod, holding the tree until the record is written (store.Hold).
func (c *Config) recordApp(ctx context.Context, s *store.Store, p *pods.Pod, name, id string) (store.Tree, error) {
	tree, hold, err := s.Acquire(ctx, id)
	if err != nil {
		return store.Tree{}, fmt.Errorf("render app %s: %w", name, err)
	}
	defer hold.Release()
	im, err := s.Manifest(id)
	if err != nil {
		return store.Tree{}, err
	}
	if err := os.MkdirAll(p.AppInfoDir(name), 0o755); err != nil {
		return store.Tree{}, err
	}
	b, err := im.MarshalJSON()
	if err != nil {
		return store.Tree{}, err
	}
	if err := os.WriteFile(p.AppManifestPath(name), b, 0o644); err != nil {
		return store.Tree{}, err
	}
	if err := os.WriteFile(p.AppTreeStoreIDPath(name), []byte(tree.ID), 0o644); err != nil {
		return store.Tree{}, err
	}
	return tree, nil
}

// layDown puts a rendered tree at target: an overlay mount whose upper and
// work dirs live in the pod (overlay/<treeID>/{upper,work}[/<app>]), or a copy.
// An OCI image's tree is its layers, mounted as several lower dirs.
func layDown(p *pods.Pod, tree store.Tree, target, overlayDir, app string, noOverlay bool, m *idmapper) error {
	if m != nil && !noOverlay {
		return layDownIdmapped(m, tree.Lowers(), target, overlayDir, app)
	}
	if noOverlay {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if len(tree.Layers) > 0 {
			return copyLayers(tree, target, overlayDir, app)
		}
		return copytree.Copy(tree.Rootfs, target)
	}
	upper, work := filepath.Join(overlayDir, layout.OverlayUpper, app), filepath.Join(overlayDir, layout.OverlayWork, app)
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := mountOverlay(target, tree.Lowers(), upper, work); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("%w (the filesystem of --dir may not support overlayfs upper dirs; try --no-overlay)", err)
		}
		return err
	}
	return nil
}
