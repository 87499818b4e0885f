package stage0

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// AppSpec is one app of a pod as the user gave it on the command line.
type AppSpec struct {
	Image     string   // image reference
	Args      []string // arguments after "--"
	HasArgs   bool     // "--" was given (even with no arguments)
	Exec      string   // --exec
	Name      string   // --name
	Signature string   // --signature

	WorkingDir        string
	User, Group       string
	SupplementaryGIDs []int
	ReadOnlyRootfs    bool
	Environment       []string // --environment K=V
	Annotations       map[string]string
	UserAnnotations   map[string]string
	UserLabels        map[string]string
	Mounts            []Mount
	// Volumes are volumes an app added to a sandbox brings (kind host or
	// empty), joined to the pod's volumes; their names must be new to
	// the pod. Only AppAdd takes them.
	Volumes []types.Volume

	// Isolator flags.
	Memory, CPU            string
	CPUShares, OOMScoreAdj *int
	CapsRetain, CapsRemove []string
	Seccomp                string

	// CRILogPath, for an app added to a sandbox (AppAdd), is an absolute
	// host path where the pod writes the app's stdout and stderr in the CRI
	// log format, besides its own log (`rkt logs`); empty for none.
	CRILogPath string
	// Stdin, for an app added to a sandbox, keeps its stdin open for
	// attach clients (AttachCmd); StdinOnce closes it when the first
	// client's stdin ends (CRI stdin and stdin_once).
	Stdin, StdinOnce bool
	// TTY, for an app added to a sandbox, gives it a pseudo-terminal as
	// its stdin, stdout and stderr (CRI tty).
	TTY bool
}

// Mount is --mount volume=NAME,target=PATH.
type Mount struct {
	Volume string
	Target string
}

// ParseMount parses rkt's --mount value.
func ParseMount(s string) (Mount, error) {
	var m Mount
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return m, fmt.Errorf("--mount %q: want volume=NAME,target=PATH", s)
		}
		switch k {
		case "volume":
			m.Volume = v
		case "target":
			m.Target = v
		default:
			return m, fmt.Errorf("--mount %q: unknown key %q", s, k)
		}
	}
	if m.Volume == "" || m.Target == "" {
		return m, fmt.Errorf("--mount %q: want volume=NAME,target=PATH", s)
	}
	// rkt 1.30 joined the target to the app's root, so a relative target
	// names the same place as with a leading "/" (after cleaning, never
	// above the root).
	m.Target = path.Join("/", m.Target)
	return m, nil
}

// ParseVolume parses rkt's --volume value with appc's rules.
func ParseVolume(s string) (*types.Volume, error) {
	v, err := types.VolumeFromString(s)
	if err != nil {
		return nil, fmt.Errorf("--volume %q: %w", s, err)
	}
	if v.Kind == "host" && v.Source == "" {
		return nil, fmt.Errorf("--volume %q: a host volume needs source=", s)
	}
	return v, nil
}

// EnvSources are the pod-wide environment flags, lowest precedence first
// after the image's own environment.
type EnvSources struct {
	Inherit bool     // --inherit-env
	File    string   // --set-env-file
	Set     []string // --set-env
}

func readEnvFile(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("--set-env-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			return nil, fmt.Errorf("--set-env-file %s: line %q is not NAME=VALUE", p, line)
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// mergeEnv applies rkt's precedence: parent < image < env file < --set-env
// < --environment (lowest first).
func mergeEnv(image types.Environment, src EnvSources, appEnv []string) (types.Environment, error) {
	var layers [][]string
	if src.Inherit {
		// The caller's identity variables would claim the app runs as the
		// caller: HOME, USER, LOGNAME and SHELL come from the image's passwd.
		var inherited []string
		for _, kv := range os.Environ() {
			switch k, _, _ := strings.Cut(kv, "="); k {
			case "HOME", "USER", "LOGNAME", "SHELL":
			default:
				inherited = append(inherited, kv)
			}
		}
		layers = append(layers, inherited)
	}
	var img []string
	for _, kv := range image {
		img = append(img, kv.Name+"="+kv.Value)
	}
	layers = append(layers, img)
	if src.File != "" {
		fileEnv, err := readEnvFile(src.File)
		if err != nil {
			return nil, err
		}
		layers = append(layers, fileEnv)
	}
	layers = append(layers, src.Set, appEnv)
	var out types.Environment
	for _, l := range layers {
		for _, kv := range l {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("environment entry %q is not NAME=VALUE", kv)
			}
			out.Set(k, v)
		}
	}
	return out, nil
}

// appName picks a unique app name: --name, else the last part of the image
// name, with -2, -3... appended when taken.
func appName(spec AppSpec, im *schema.ImageManifest, taken map[string]bool) (types.ACName, error) {
	if spec.Name != "" {
		n, err := types.NewACName(spec.Name)
		if err != nil {
			return "", fmt.Errorf("--name %q: %w", spec.Name, err)
		}
		if taken[n.String()] {
			return "", fmt.Errorf("--name %q: an app of this pod already has that name", spec.Name)
		}
		return *n, nil
	}
	base := path.Base(string(im.Name))
	n, err := types.SanitizeACName(base)
	if err != nil {
		return "", fmt.Errorf("image %s: cannot derive an app name: %w", im.Name, err)
	}
	name := n
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", n, i)
	}
	return types.ACName(name), nil
}

// runtimeApp builds one app of the pod manifest from the image and the flags.
func runtimeApp(spec AppSpec, id string, im *schema.ImageManifest, name types.ACName, env EnvSources) (schema.RuntimeApp, error) {
	h, err := types.NewHash(id)
	if err != nil {
		return schema.RuntimeApp{}, err
	}
	ra := schema.RuntimeApp{
		Name:           name,
		Image:          schema.RuntimeImage{Name: &im.Name, ID: *h, Labels: im.Labels},
		ReadOnlyRootFS: spec.ReadOnlyRootfs,
	}
	var app types.App
	if im.App != nil {
		app = *im.App
		app.Exec = append(types.Exec(nil), im.App.Exec...)
		app.Environment = append(types.Environment(nil), im.App.Environment...)
	}
	if spec.Exec != "" {
		app.Exec = types.Exec{spec.Exec}
	}
	if spec.HasArgs || spec.Exec != "" {
		if len(app.Exec) == 0 {
			return ra, fmt.Errorf("image %s has no exec; give one with --exec", im.Name)
		}
		app.Exec = append(types.Exec{app.Exec[0]}, spec.Args...)
	}
	if len(app.Exec) == 0 {
		return ra, fmt.Errorf("image %s has no app to run; give one with --exec", im.Name)
	}
	if spec.WorkingDir != "" {
		app.WorkingDirectory = spec.WorkingDir
	}
	if spec.User != "" {
		app.User = spec.User
	}
	if spec.Group != "" {
		app.Group = spec.Group
	}
	if app.User == "" {
		app.User = "0"
	}
	if app.Group == "" {
		app.Group = "0"
	}
	if len(spec.SupplementaryGIDs) > 0 {
		app.SupplementaryGIDs = spec.SupplementaryGIDs
	}
	if app.Environment, err = mergeEnv(app.Environment, env, spec.Environment); err != nil {
		return ra, err
	}
	if app.Isolators, err = applyIsolatorFlags(app.Isolators, spec); err != nil {
		return ra, err
	}
	for _, m := range spec.Mounts {
		vn, err := types.NewACName(m.Volume)
		if err != nil {
			return ra, fmt.Errorf("--mount volume=%s: %w", m.Volume, err)
		}
		ra.Mounts = append(ra.Mounts, schema.Mount{Volume: *vn, Path: m.Target})
	}
	for k, v := range spec.Annotations {
		n, err := types.NewACIdentifier(k)
		if err != nil {
			return ra, fmt.Errorf("--annotation %s: %w", k, err)
		}
		ra.Annotations.Set(*n, v)
	}
	if len(spec.UserAnnotations) > 0 {
		app.UserAnnotations = types.UserAnnotations(spec.UserAnnotations)
	}
	if len(spec.UserLabels) > 0 {
		app.UserLabels = types.UserLabels(spec.UserLabels)
	}
	ra.App = &app
	return ra, nil
}

// implicitMount is a host volume met by name at an image's mount point
// without a --mount: mounted (one-app pod) or not (several apps).
type implicitMount struct {
	App, Volume, Path string
	Mounted           bool
}

// fillMounts satisfies every mount point of the app that no mount covers
// yet: by the pod volume of the same name (rkt's and appc's rule), or by a
// new empty volume (Docker's implicit volumes). It returns the volumes it
// added and the host volumes it met by name.
//
// The image chooses its mount points' names and paths, so it must not
// choose where a host directory appears: unless the app's mount points were
// written by the user (userApp: the app of a --pod-manifest), a host volume
// is matched by name only in a pod of one app, where the user's --volume can
// only be meant for that app; in a pod of several apps the mount point gets
// an empty volume instead, and the host volume needs an explicit --mount.
// Empty volumes are matched by name always.
func fillMounts(ra *schema.RuntimeApp, vols map[types.ACName]types.Volume, userApp bool, apps int) ([]types.Volume, []implicitMount) {
	var added []types.Volume
	var implicit []implicitMount
	for _, mp := range ra.App.MountPoints {
		done := false
		for _, m := range ra.Mounts {
			if path.Clean(m.Path) == path.Clean(mp.Path) {
				done = true
				break
			}
		}
		if done {
			continue
		}
		if v, ok := vols[mp.Name]; ok {
			if userApp || v.Kind != "host" {
				ra.Mounts = append(ra.Mounts, schema.Mount{Volume: mp.Name, Path: mp.Path})
				continue
			}
			im := implicitMount{App: ra.Name.String(), Volume: mp.Name.String(), Path: mp.Path, Mounted: apps == 1}
			implicit = append(implicit, im)
			if im.Mounted {
				ra.Mounts = append(ra.Mounts, schema.Mount{Volume: mp.Name, Path: mp.Path})
				continue
			}
		}
		name := types.ACName(ra.Name.String() + "-" + mp.Name.String())
		for i := 2; ; i++ {
			if _, taken := vols[name]; !taken {
				break
			}
			name = types.ACName(fmt.Sprintf("%s-%s-%d", ra.Name, mp.Name, i))
		}
		v, err := types.VolumeFromString(fmt.Sprintf("%s,kind=empty,readOnly=%v", name, mp.ReadOnly))
		if err != nil {
			continue
		}
		vols[name] = *v
		added = append(added, *v)
		ra.Mounts = append(ra.Mounts, schema.Mount{Volume: name, Path: mp.Path})
	}
	return added, implicit
}

// warnImplicit tells the user about host volumes met by name at an image's
// mount point.
func (c *Config) warnImplicit(implicit []implicitMount) {
	for _, im := range implicit {
		if im.Mounted {
			c.logger().Warn("host volume mounted at the image's mount point of the same name; make it explicit with --mount",
				"app", im.App, "volume", im.Volume, "path", im.Path)
			continue
		}
		c.logger().Warn("host volume not mounted at the image's mount point of the same name: in a pod of several apps it needs --mount volume=NAME,target=PATH after that app's image",
			"app", im.App, "volume", im.Volume, "path", im.Path)
	}
}

// implicitVolumes names the empty volumes fillMounts made for mount points
// that nothing satisfied: an empty volume named "<app>-<mount point>",
// mounted at that mount point, that the user did not declare.
func implicitVolumes(pm *schema.PodManifest, userVolumes []string) []string {
	declared := map[string]bool{}
	for _, vs := range userVolumes {
		if v, err := types.VolumeFromString(vs); err == nil {
			declared[v.Name.String()] = true
		}
	}
	kinds := map[types.ACName]string{}
	for _, v := range pm.Volumes {
		kinds[v.Name] = v.Kind
	}
	var out []string
	for _, ra := range pm.Apps {
		if ra.App == nil {
			continue
		}
		for _, mp := range ra.App.MountPoints {
			name := ra.Name.String() + "-" + mp.Name.String()
			for _, m := range ra.Mounts {
				if m.Path == mp.Path && m.Volume.String() == name && kinds[m.Volume] == "empty" && !declared[name] {
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// ParsePort parses rkt's --port NAME:[HOSTIP:]HOSTPORT.
func ParsePort(s string) (types.ExposedPort, error) {
	var ep types.ExposedPort
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return ep, fmt.Errorf("--port %q: want NAME:[HOSTIP:]HOSTPORT", s)
	}
	n, err := types.NewACName(parts[0])
	if err != nil {
		return ep, fmt.Errorf("--port %q: %w", s, err)
	}
	ep.Name = *n
	if len(parts) == 3 {
		ep.HostIP = net.ParseIP(parts[1])
		if ep.HostIP == nil {
			return ep, fmt.Errorf("--port %q: invalid host IP %q", s, parts[1])
		}
	}
	port, err := strconv.ParseUint(parts[len(parts)-1], 10, 16)
	if err != nil || port == 0 {
		return ep, fmt.Errorf("--port %q: invalid host port %q", s, parts[len(parts)-1])
	}
	ep.HostPort = uint(port)
	return ep, nil
}

// podAnnotations sets the pod's own annotations, user annotations and
// user labels, in key order.
func podAnnotations(pm *schema.PodManifest, pc PrepareConfig) error {
	for _, k := range slices.Sorted(maps.Keys(pc.Annotations)) {
		n, err := types.NewACIdentifier(k)
		if err != nil {
			return fmt.Errorf("--annotation %s: %w", k, err)
		}
		pm.Annotations.Set(*n, pc.Annotations[k])
	}
	if len(pc.UserAnnotations) > 0 {
		pm.UserAnnotations = types.UserAnnotations(maps.Clone(pc.UserAnnotations))
	}
	if len(pc.UserLabels) > 0 {
		pm.UserLabels = types.UserLabels(maps.Clone(pc.UserLabels))
	}
	return nil
}

// podSysctls sets the pod's sysctls as its os/unix/sysctl isolator. Only
// sysctls of the pod's own network namespace (net.*) are accepted, as the
// stage1 applies them.
func podSysctls(pm *schema.PodManifest, pc PrepareConfig) error {
	if len(pc.Sysctls) == 0 {
		return nil
	}
	for k, v := range pc.Sysctls {
		if !strings.HasPrefix(k, "net.") || strings.Contains(k, "..") || strings.ContainsAny(k, "/ ") || strings.HasSuffix(k, ".") {
			return fmt.Errorf("--sysctl %s: only namespaced net.* sysctls may be set", k)
		}
		if strings.ContainsAny(v, "\n\x00") {
			return fmt.Errorf("--sysctl %s: malformed value", k)
		}
	}
	pm.Isolators = append(pm.Isolators, types.UnixSysctl(maps.Clone(pc.Sysctls)).AsIsolator())
	return nil
}

// ParseSandboxPort parses the --port of rkt app sandbox, rkt 1.30's
// NAME:PROTOCOL:PODPORT:HOSTIP:HOSTPORT (e.g. http:tcp:8080:0.0.0.0:80). A
// sandbox starts with no app, so the forward names the pod port itself
// (the exposed port's podPort) instead of an app's port; HOSTIP 0.0.0.0
// (or ::) means every host address.
func ParseSandboxPort(s string) (types.ExposedPort, error) {
	var ep types.ExposedPort
	parts := strings.Split(s, ":")
	if len(parts) != 5 {
		return ep, fmt.Errorf("--port %q: want NAME:PROTOCOL:PODPORT:HOSTIP:HOSTPORT", s)
	}
	n, err := types.NewACName(parts[0])
	if err != nil {
		return ep, fmt.Errorf("--port %q: %w", s, err)
	}
	proto := parts[1]
	if proto != "tcp" && proto != "udp" {
		return ep, fmt.Errorf("--port %q: protocol %q is not tcp or udp", s, proto)
	}
	podPort, err := strconv.ParseUint(parts[2], 10, 16)
	if err != nil || podPort == 0 {
		return ep, fmt.Errorf("--port %q: invalid pod port %q", s, parts[2])
	}
	ip := net.ParseIP(parts[3])
	if ip == nil {
		return ep, fmt.Errorf("--port %q: invalid host IP %q", s, parts[3])
	}
	if !ip.IsUnspecified() {
		ep.HostIP = ip
	}
	hostPort, err := strconv.ParseUint(parts[4], 10, 16)
	if err != nil || hostPort == 0 {
		return ep, fmt.Errorf("--port %q: invalid host port %q", s, parts[4])
	}
	ep.Name = *n
	ep.HostPort = uint(hostPort)
	ep.PodPort = &types.Port{Name: *n, Protocol: proto, Port: uint(podPort), Count: 1}
	return ep, nil
}

// addSandboxPorts adds the --port forwards of rkt app sandbox to the pod
// manifest; a host port is forwarded once.
func addSandboxPorts(pm *schema.PodManifest, specs []string) error {
	seen := map[string]bool{}
	for _, s := range specs {
		ep, err := ParseSandboxPort(s)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("%s/%s:%d", ep.PodPort.Protocol, ep.HostIP, ep.HostPort)
		if seen[key] {
			return fmt.Errorf("--port %s: host port %s/%d forwarded twice", s, ep.PodPort.Protocol, ep.HostPort)
		}
		seen[key] = true
		pm.Ports = append(pm.Ports, ep)
	}
	return nil
}

// addPorts adds --port forwards to the pod manifest, checking that an app
// of the pod declares each port name.
func addPorts(pm *schema.PodManifest, specs []string) error {
	for _, s := range specs {
		ep, err := ParsePort(s)
		if err != nil {
			return err
		}
		found := false
		for _, ra := range pm.Apps {
			for _, p := range ra.App.Ports {
				found = found || p.Name == ep.Name
			}
		}
		if !found {
			return fmt.Errorf("--port %s: no app of the pod declares a port named %q", s, ep.Name)
		}
		pm.Ports = append(pm.Ports, ep)
	}
	return nil
}
