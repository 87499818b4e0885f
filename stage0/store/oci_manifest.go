package store

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Annotations and user annotations that OCI images carry in their appc
// manifest (docker2aci's names where it had one).
const (
	AnnotationEntrypoint   = "appc.io/docker/entrypoint"   // JSON array
	AnnotationCmd          = "appc.io/docker/cmd"          // JSON array
	AnnotationManifestHash = "appc.io/docker/manifesthash" // sha256:... of the OCI manifest
	AnnotationImageID      = "appc.io/docker/imageid"      // sha256:... of the OCI config
	AnnotationOriginalName = "appc.io/docker/originalname" // the reference as given
	// UserAnnotationStopSignal is the OCI StopSignal, an app user annotation.
	UserAnnotationStopSignal = "appc.io/docker/stopsignal"
)

// OCIRef names an OCI image in appc terms.
type OCIRef struct {
	// Name is the appc image name: registry host and repository, lowercased
	// and sanitized to an AC identifier (see OCIName).
	Name string
	// Version is the tag; "" for a reference by digest.
	Version string
	// Original is the reference as the user gave it.
	Original string
}

// OCIName turns "registry:port/repo" into an AC identifier: lowercase, and
// every character an AC identifier does not allow (the port's ':') becomes '-'.
func OCIName(registryAndRepo string) (string, error) {
	n, err := types.SanitizeACIdentifier(strings.ReplaceAll(strings.ToLower(registryAndRepo), ":", "-"))
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", registryAndRepo, err)
	}
	return n, nil
}

// ManifestFromOCI maps an OCI image config to an appc image manifest as
// docs/design.md and appc.md's table say: exec = Entrypoint then Cmd (both
// kept as JSON annotations), Env, WorkingDir (default "/"), User "u[:g]"
// (empty: 0:0; a bare user's primary group is passwdGroup(user), "0" when it
// returns ""), ExposedPorts "80/tcp" as port "80-tcp", Volumes as mount
// points "volume-<path>", Labels as annotations when the key is an AC
// identifier and user labels otherwise, os/arch/variant as appc labels,
// created/author as annotations, StopSignal as a user annotation.
// manifestDigest is the sha256 digest of the OCI manifest blob.
func ManifestFromOCI(cfg *v1.ConfigFile, ref OCIRef, manifestDigest, configDigest string, passwdGroup func(user string) string) (*schema.ImageManifest, error) {
	name, err := types.NewACIdentifier(ref.Name)
	if err != nil {
		return nil, fmt.Errorf("image name %q: %w", ref.Name, err)
	}
	im := schema.BlankImageManifest()
	im.Name = *name
	labels := map[types.ACIdentifier]string{}
	if ref.Version != "" {
		labels["version"] = ref.Version
	}
	if cfg.OS != "" {
		os, arch, err := types.ToAppcOSArch(cfg.OS, cfg.Architecture, cfg.Variant)
		if err != nil {
			return nil, fmt.Errorf("image %s: platform %s/%s: %w", ref.Name, cfg.OS, cfg.Architecture, err)
		}
		labels["os"], labels["arch"] = os, arch
	}
	if im.Labels, err = types.LabelsFromMap(labels); err != nil {
		return nil, fmt.Errorf("image %s: labels: %w", ref.Name, err)
	}

	c := cfg.Config
	app := &types.App{
		Exec:             append(append(types.Exec{}, c.Entrypoint...), c.Cmd...),
		WorkingDirectory: "/",
	}
	if c.WorkingDir != "" {
		app.WorkingDirectory = path.Clean("/" + c.WorkingDir)
	}
	app.User, app.Group = "0", "0"
	if c.User != "" {
		u, g, hasGroup := strings.Cut(c.User, ":")
		switch {
		case u == "":
			return nil, fmt.Errorf("image %s: user %q: empty user name", ref.Name, c.User)
		case hasGroup && g == "":
			return nil, fmt.Errorf("image %s: user %q: empty group name", ref.Name, c.User)
		case hasGroup:
			app.User, app.Group = u, g
		default:
			app.User = u
			if passwdGroup != nil {
				if pg := passwdGroup(u); pg != "" {
					app.Group = pg
				}
			}
		}
	}
	for _, kv := range c.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue // "NAME" alone unsets in docker; there is nothing to unset here
		}
		app.Environment.Set(k, v)
	}
	for _, p := range sortedKeys(c.ExposedPorts) {
		port, err := ociPort(p)
		if err != nil {
			return nil, fmt.Errorf("image %s: exposed port %q: %w", ref.Name, p, err)
		}
		app.Ports = append(app.Ports, port)
	}
	taken := map[types.ACName]bool{}
	for _, v := range sortedKeys(c.Volumes) {
		if !path.IsAbs(v) {
			v = "/" + v
		}
		v = path.Clean(v)
		mp, err := volumeMountPoint(v, taken)
		if err != nil {
			return nil, fmt.Errorf("image %s: volume %q: %w", ref.Name, v, err)
		}
		app.MountPoints = append(app.MountPoints, mp)
	}
	if c.StopSignal != "" {
		app.UserAnnotations = types.UserAnnotations{UserAnnotationStopSignal: c.StopSignal}
	}

	add := func(k, v string) {
		if v != "" {
			im.Annotations.Set(types.ACIdentifier(k), v)
		}
	}
	for _, k := range sortedKeys(c.Labels) {
		if _, err := types.NewACIdentifier(k); err == nil {
			add(k, c.Labels[k])
			continue
		}
		if app.UserLabels == nil {
			app.UserLabels = types.UserLabels{}
		}
		app.UserLabels[k] = c.Labels[k]
	}
	if len(c.Entrypoint) > 0 {
		b, _ := json.Marshal(c.Entrypoint)
		add(AnnotationEntrypoint, string(b))
	}
	if len(c.Cmd) > 0 {
		b, _ := json.Marshal(c.Cmd)
		add(AnnotationCmd, string(b))
	}
	if !cfg.Created.IsZero() {
		add("created", cfg.Created.UTC().Format(time.RFC3339))
	}
	add("authors", cfg.Author)
	add(AnnotationManifestHash, manifestDigest)
	add(AnnotationImageID, configDigest)
	add(AnnotationOriginalName, ref.Original)
	im.App = app
	// Round-trip through the validating encoder, so that what the store
	// keeps always decodes.
	b, err := im.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("image %s: appc manifest: %w", ref.Name, err)
	}
	out := &schema.ImageManifest{}
	if err := out.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("image %s: appc manifest: %w", ref.Name, err)
	}
	return out, nil
}

// ociPort maps "80/tcp", "53/udp", "80" or "8000-8010/tcp".
func ociPort(s string) (types.Port, error) {
	spec, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return types.Port{}, fmt.Errorf("unknown protocol %q", proto)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	first, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || first == 0 {
		return types.Port{}, fmt.Errorf("invalid port %q", lo)
	}
	last := first
	if isRange {
		if last, err = strconv.ParseUint(hi, 10, 16); err != nil || last < first {
			return types.Port{}, fmt.Errorf("invalid port range %q", spec)
		}
	}
	n, err := types.NewACName(spec + "-" + proto)
	if err != nil {
		return types.Port{}, err
	}
	return types.Port{Name: *n, Protocol: proto, Port: uint(first), Count: uint(last - first + 1)}, nil
}

// volumeMountPoint names a volume path as docker2aci did: "/var/lib/data"
// becomes "volume-var-lib-data", with "-2", "-3"... on collisions.
func volumeMountPoint(p string, taken map[types.ACName]bool) (types.MountPoint, error) {
	base := "volume"
	if p != "/" {
		s, err := types.SanitizeACName(strings.ToLower(strings.Trim(p, "/")))
		if err != nil {
			return types.MountPoint{}, err
		}
		base += "-" + s
	}
	name := base
	for i := 2; taken[types.ACName(name)]; i++ {
		name = base + "-" + strconv.Itoa(i)
	}
	n, err := types.NewACName(name)
	if err != nil {
		return types.MountPoint{}, err
	}
	taken[*n] = true
	return types.MountPoint{Name: *n, Path: p}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
