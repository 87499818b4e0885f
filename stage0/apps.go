package stage0

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage1"
)

// ErrNotSandbox means an app command named a pod that `rkt app sandbox`
// did not start: its apps are fixed.
var ErrNotSandbox = errors.New("not a sandbox (start one with rkt app sandbox)")

// ErrNoApp means a pod has no app of the given name.
var ErrNoApp = errors.New("no such app")

// States of an app of a sandbox (rkt app status).
const (
	AppCreated = "created" // added, never started
	AppRunning = "running"
	AppExited  = "exited"
)

// AppState is what `rkt app list` and `rkt app status` report about one app.
type AppState struct {
	Name     string     `json:"name"`
	State    string     `json:"state"`
	Image    string     `json:"image_name,omitempty"`
	ImageID  string     `json:"image_id,omitempty"`
	Created  *time.Time `json:"created_at,omitempty"`
	Started  *time.Time `json:"started_at,omitempty"`
	Finished *time.Time `json:"finished_at,omitempty"`
	ExitCode *int       `json:"exit_code,omitempty"`
}

// AppSandbox prepares a mutable pod with no apps and execs its stage1 with
// --mutable: like Run, it does not return on success, and this process
// stays in the foreground as the sandbox until it is stopped.
func (c *Config) AppSandbox(ctx context.Context, pc PrepareConfig, ro RunOptions) error {
	if len(pc.Apps) > 0 || pc.PodManifest != "" {
		return errors.New("app sandbox: a sandbox starts with no apps; add them with rkt app add")
	}
	// Its ports name pod ports, not app ports (rkt's sandbox format):
	// checked before anything is fetched.
	if err := addSandboxPorts(&schema.PodManifest{}, pc.Ports); err != nil {
		return err
	}
	if n := strings.TrimSpace(ro.Args.Net); len(pc.Ports) > 0 && (n == "host" || n == "none") {
		// The pod would start without its forwards (host) or fail (none).
		return fmt.Errorf("--port needs a network; --net=%s has none to forward to", n)
	}
	if err := podAnnotations(&schema.PodManifest{}, pc); err != nil {
		return err
	}
	if err := podSysctls(&schema.PodManifest{}, pc); err != nil {
		return err
	}
	if n := strings.TrimSpace(ro.Args.Net); len(pc.Sysctls) > 0 && (n == "host" || n == "none") {
		// On the host network they would change the host.
		return fmt.Errorf("--sysctl needs a network of the pod's own; not allowed with --net=%s", n)
	}
	if ro.Args.Interactive {
		return errors.New("app sandbox: --interactive is not supported for sandboxes (their apps log; use rkt enter --app)")
	}
	if pc.PrivateUsers {
		// Apps added later would need their rootfs shifted or idmapped
		// into the running pod's user namespace.
		return errors.New("app sandbox: --private-users is not supported for sandboxes")
	}
	pc.Sandbox = true
	pc.Options.Mutable = true
	ro.Args.Mutable = true
	return c.Run(ctx, pc, ro)
}

// sandbox finds a pod by reference and checks that it is a sandbox.
func (c *Config) sandbox(ref string) (*pods.Pod, error) {
	p, err := c.pod(ref)
	if err != nil {
		return nil, err
	}
	o, err := stage1.ReadOptions(p.OptionsPath())
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	if !o.Mutable {
		return nil, fmt.Errorf("pod %s: %w", p.UUID, ErrNotSandbox)
	}
	return p, nil
}

// AppList returns the state of every app of a sandbox, in manifest order.
func (c *Config) AppList(ref string) ([]AppState, error) {
	p, err := c.sandbox(ref)
	if err != nil {
		return nil, err
	}
	return appStates(p)
}

// AppStatus returns the state of one app of a sandbox.
func (c *Config) AppStatus(ref, app string) (AppState, error) {
	if _, err := stage1.AppName(app); err != nil {
		return AppState{}, err
	}
	p, err := c.sandbox(ref)
	if err != nil {
		return AppState{}, err
	}
	all, err := appStates(p)
	if err != nil {
		return AppState{}, err
	}
	for _, a := range all {
		if a.Name == app {
			return a, nil
		}
	}
	return AppState{}, fmt.Errorf("pod %s: app %s: %w", p.UUID, app, ErrNoApp)
}

// manifestApp is what status and app listings show of a pod manifest's app.
type manifestApp struct {
	Name  string `json:"name"`
	Image struct {
		Name string `json:"name"`
		ID   string `json:"id"`
	} `json:"image"`
}

// manifestApps reads the names and image references of a pod's apps: a
// plain decode of those fields keeps `rkt list` fast with many pods (the
// manifest was validated when the pod was made).
func manifestApps(p *pods.Pod) ([]manifestApp, error) {
	b, err := os.ReadFile(p.ManifestPath())
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	var pm struct {
		Apps []manifestApp `json:"apps"`
	}
	if err := json.Unmarshal(b, &pm); err != nil {
		return nil, fmt.Errorf("pod %s: manifest: %w", p.UUID, err)
	}
	return pm.Apps, nil
}

// appStates reads the apps of the pod manifest (stage0's file) and what
// the pod recorded about each (its files, read as untrusted).
func appStates(p *pods.Pod) ([]AppState, error) {
	apps, err := manifestApps(p)
	if err != nil {
		return nil, err
	}
	running := p.State() == pods.Running
	out := make([]AppState, 0, len(apps))
	for _, ra := range apps {
		a := AppState{Name: ra.Name, Image: ra.Image.Name, ImageID: ra.Image.ID, State: AppCreated}
		if fi, err := os.Stat(p.AppManifestPath(ra.Name)); err == nil {
			a.Created = timePtr(fi.ModTime())
		}
		r := p.AppRecord(ra.Name)
		a.Started = timePtr(r.Started)
		switch {
		case !r.Finished.IsZero():
			a.State, a.Finished = AppExited, timePtr(r.Finished)
			code := r.Code
			a.ExitCode = &code
		case !r.Started.IsZero() && running:
			a.State = AppRunning
		case !r.Started.IsZero():
			// The pod ended without recording the app's exit.
			a.State = AppExited
		}
		out = append(out, a)
	}
	return out, nil
}
