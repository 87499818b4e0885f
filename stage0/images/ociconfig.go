package images

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rkt-ng/rkt/stage0/store"
)

// ociInternalAnnotations are appc annotations that rkt-ng writes when it
// imports an OCI image; they describe that import and do not become labels.
var ociInternalAnnotations = []string{
	store.AnnotationEntrypoint, store.AnnotationCmd, store.AnnotationManifestHash,
	store.AnnotationImageID, store.AnnotationOriginalName, "created", "authors",
}

// ConfigFromManifest maps an appc image manifest to an OCI image config,
// the reverse of store.ManifestFromOCI (README, "OCI images"):
//
//   - exec: Entrypoint = exec[0] and Cmd = exec[1:], since arguments given
//     to rkt run replace exec[1:] as docker run's replace Cmd; an image
//     imported from OCI keeps its own Entrypoint and Cmd (its
//     appc.io/docker/entrypoint and cmd annotations) while they still make
//     up exec;
//   - environment, workingDirectory, user:group, ports ("80/tcp",
//     "9000-9002/tcp" for a count), mount points as Volumes, the
//     appc.io/docker/stopsignal user annotation as StopSignal;
//   - annotations and user labels as Labels, the annotations created and
//     authors as created and author;
//   - os and arch labels as os, architecture and variant (the running
//     system's when the image has none).
//
// What OCI cannot say is refused (a user or group given as a path) or left
// out and named in the returned list (isolators, event handlers,
// supplementary groups, read-only mount points, port names).
func ConfigFromManifest(im *schema.ImageManifest) (*v1.ConfigFile, []string, error) {
	cf := &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"}}
	if runtime.GOARCH == "arm64" {
		cf.Variant = "v8"
	}
	if appcOS, ok := im.Labels.Get("os"); ok {
		appcArch, _ := im.Labels.Get("arch")
		goOS, goArch, variant, err := types.ToGoOSArch(appcOS, appcArch)
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: os %q arch %q: %w", im.Name, appcOS, appcArch, err)
		}
		cf.OS, cf.Architecture, cf.Variant = goOS, goArch, variant
	}
	if s, ok := im.Annotations.Get("created"); ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			cf.Created = v1.Time{Time: t.UTC()}
		}
	}
	cf.Author, _ = im.Annotations.Get("authors")

	c := &cf.Config
	labels := map[string]string{}
	for _, a := range im.Annotations {
		if !slices.Contains(ociInternalAnnotations, a.Name.String()) {
			labels[a.Name.String()] = a.Value
		}
	}
	var dropped []string
	if app := im.App; app != nil {
		if err := appToOCI(im, app, c, labels); err != nil {
			return nil, nil, err
		}
		dropped = droppedFields(app)
	}
	if len(labels) > 0 {
		c.Labels = labels
	}
	return cf, dropped, nil
}

func appToOCI(im *schema.ImageManifest, app *types.App, c *v1.Config, labels map[string]string) error {
	if len(app.Exec) > 0 {
		c.Entrypoint, c.Cmd = []string{app.Exec[0]}, slices.Clone(app.Exec[1:])
		var ep, cmd []string
		epJSON, hasEP := im.Annotations.Get(store.AnnotationEntrypoint)
		cmdJSON, hasCmd := im.Annotations.Get(store.AnnotationCmd)
		if (!hasEP || json.Unmarshal([]byte(epJSON), &ep) == nil) &&
			(!hasCmd || json.Unmarshal([]byte(cmdJSON), &cmd) == nil) &&
			(hasEP || hasCmd) && slices.Equal(append(slices.Clone(ep), cmd...), []string(app.Exec)) {
			c.Entrypoint, c.Cmd = ep, cmd
		}
		if len(c.Cmd) == 0 {
			c.Cmd = nil
		}
	}
	for _, e := range app.Environment {
		c.Env = append(c.Env, e.Name+"="+e.Value)
	}
	if app.WorkingDirectory != "" {
		c.WorkingDir = app.WorkingDirectory
	}
	for _, id := range []struct{ what, v string }{{"user", app.User}, {"group", app.Group}} {
		if strings.HasPrefix(id.v, "/") {
			return fmt.Errorf("image %s: %s %q is a file whose owner rkt takes; an OCI image needs a name or number", im.Name, id.what, id.v)
		}
	}
	if app.User != "" || app.Group != "" {
		c.User = app.User
		if app.Group != "" {
			c.User += ":" + app.Group
		}
	}
	for _, p := range app.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		spec := strconv.FormatUint(uint64(p.Port), 10)
		if p.Count > 1 {
			spec += "-" + strconv.FormatUint(uint64(p.Port+p.Count-1), 10)
		}
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		c.ExposedPorts[spec+"/"+proto] = struct{}{}
	}
	for _, mp := range app.MountPoints {
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		c.Volumes[mp.Path] = struct{}{}
	}
	if s := app.UserAnnotations[store.UserAnnotationStopSignal]; s != "" {
		c.StopSignal = s
	}
	for k, v := range app.UserLabels {
		if _, taken := labels[k]; !taken {
			labels[k] = v
		}
	}
	return nil
}

// droppedFields names what of app an OCI config cannot carry.
func droppedFields(app *types.App) []string {
	var out []string
	if len(app.Isolators) > 0 {
		var names []string
		for _, i := range app.Isolators {
			names = append(names, i.Name.String())
		}
		out = append(out, "isolators ("+strings.Join(names, ", ")+")")
	}
	if len(app.EventHandlers) > 0 {
		out = append(out, "event handlers")
	}
	if len(app.SupplementaryGIDs) > 0 {
		out = append(out, "supplementary GIDs")
	}
	for _, mp := range app.MountPoints {
		if mp.ReadOnly {
			out = append(out, "read-only flag of mount point "+mp.Name.String())
		}
	}
	for _, p := range app.Ports {
		if want := fmt.Sprintf("%d-%s", p.Port, p.Protocol); p.Count <= 1 && p.Name.String() != want {
			out = append(out, "name of port "+p.Name.String())
		}
	}
	return out
}
