package stage0

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/rkt-ng/rkt/internal/untrusted"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage1"
)

// PodStatus is what `rkt status` and `rkt list` report about a pod.
type PodStatus struct {
	UUID     string      `json:"name"`
	PodName  string      `json:"pod_name,omitempty"`
	State    string      `json:"state"`
	Networks []Network   `json:"networks,omitempty"`
	Apps     []AppStatus `json:"app_status,omitempty"`
	Created  *time.Time  `json:"created_at,omitempty"`
	Started  *time.Time  `json:"started_at,omitempty"`
	Exited   *time.Time  `json:"exited_at,omitempty"`
	PID      int         `json:"pid,omitempty"`
	Ready    bool        `json:"ready,omitempty"`
	// Stage1Info is what the stage1 reported about how it runs the pod
	// (stage1.InfoFile), e.g. the KVM stage1's accelerator.
	Stage1Info map[string]string `json:"stage1_info,omitempty"`
}

// AppStatus is one app of a pod.
type AppStatus struct {
	Name     string `json:"name"`
	Image    string `json:"image_name,omitempty"`
	ImageID  string `json:"image_id,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	// StoppedByRkt says rkt stopped the app because the pod was stopping
	// (another app failed, `rkt stop`, SIGTERM to `rkt run`); ExitCode is
	// then what the stop signal gave it, not a failure of its own.
	StoppedByRkt bool `json:"stopped_by_rkt,omitempty"`
	HasExited    bool `json:"-"`
}

// Network is one network of a pod with its addresses.
type Network struct {
	Name string   `json:"netName"`
	IPs  []string `json:"ips,omitempty"`
}

// HasExited reports whether the pod will run no more.
func (s *PodStatus) HasExited() bool {
	switch pods.State(s.State) {
	case pods.Running, pods.Preparing, pods.Prepared, pods.Embryo:
		return false
	}
	return true
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// StatusOf reads a pod's status from its directory.
func StatusOf(p *pods.Pod) PodStatus {
	st := PodStatus{UUID: p.UUID, PodName: p.Name(), State: string(p.State()), Created: timePtr(p.Created())}
	st.Started = timePtr(p.Started())
	if st.Started != nil && p.State() == pods.Running {
		st.PID, _ = p.PID()
		st.Ready = p.IsReady()
	}
	codes, exitedAt := p.AppStatuses()
	if apps, err := manifestApps(p); err == nil {
		var stopped map[string]bool
		if len(codes) > 0 {
			stopped = p.StoppedApps()
		}
		for _, ra := range apps {
			a := AppStatus{Name: ra.Name, ImageID: ra.Image.ID, Image: ra.Image.Name, StoppedByRkt: stopped[ra.Name]}
			if c, ok := codes[a.Name]; ok {
				a.ExitCode = &c
			}
			st.Apps = append(st.Apps, a)
		}
	}
	if st.HasExited() && st.Started != nil {
		st.Exited = timePtr(exitedAt)
	}
	st.Networks = readNetworks(p.NetInfoPath())
	if b, err := untrusted.ReadFile(p.Stage1InfoPath(), stage1.MaxInfoBytes); err == nil {
		st.Stage1Info = stage1.ParseInfo(b)
	}
	return st
}

// readNetworks reads net-info.json's network names and IPs.
func readNetworks(path string) []Network {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var info struct {
		Networks []struct {
			NetName string   `json:"netName"`
			IPs     []string `json:"ips"`
		} `json:"networks"`
	}
	if json.Unmarshal(b, &info) != nil {
		return nil
	}
	var out []Network
	for _, n := range info.Networks {
		out = append(out, Network{Name: n.NetName, IPs: n.IPs})
	}
	return out
}

// FormatNetworks renders networks as rkt does: name:ip4=..., joined by commas.
func FormatNetworks(ns []Network) string {
	var parts []string
	for _, n := range ns {
		for _, ip := range n.IPs {
			kind := "ip4"
			if strings.Contains(ip, ":") {
				kind = "ip6"
			}
			parts = append(parts, n.Name+":"+kind+"="+strings.Split(ip, "/")[0])
		}
	}
	return strings.Join(parts, ", ")
}

// WaitOptions are `rkt status --wait` and `--wait-ready`; zero means no wait.
type WaitOptions struct {
	Exit, Ready time.Duration
}

// Status finds a pod and returns its status, waiting as asked.
func (c *Config) Status(ctx context.Context, ref string, w WaitOptions) (PodStatus, error) {
	p, err := c.pod(ref)
	if err != nil {
		return PodStatus{}, err
	}
	uuid := p.UUID
	wait := func(d time.Duration, done func(*pods.Pod) bool) error {
		deadline := time.Now().Add(d)
		for !done(p) {
			if time.Now().After(deadline) {
				return fmt.Errorf("pod %s: timed out after %v", uuid, d)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if p, err = c.pod(uuid); err != nil {
				return err
			}
		}
		return nil
	}
	if w.Ready > 0 {
		if err := wait(w.Ready, func(p *pods.Pod) bool { return p.IsReady() || p.IsFinished() }); err != nil {
			return PodStatus{}, err
		}
	}
	if w.Exit > 0 {
		if err := wait(w.Exit, func(p *pods.Pod) bool { return p.IsFinished() }); err != nil {
			return PodStatus{}, err
		}
	}
	return StatusOf(p), nil
}

// List returns the status of every pod, oldest first.
func (c *Config) List() ([]PodStatus, error) {
	pd, err := c.Pods()
	if err != nil {
		return nil, err
	}
	ps, err := pd.List()
	if err != nil {
		return nil, err
	}
	out := make([]PodStatus, 0, len(ps))
	for _, p := range ps {
		out = append(out, StatusOf(p))
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Created, out[j].Created
		return a != nil && b != nil && a.Before(*b)
	})
	return out, nil
}

// ShortID shortens an image ID for display as rkt does (sha512- + 32 hex).
func ShortID(id string) string {
	if len(id) > len("sha512-")+32 {
		return id[:len("sha512-")+32]
	}
	return id
}
