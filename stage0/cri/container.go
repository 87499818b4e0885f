package cri

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage0"
)

// App annotations of a container: its ID, and its CRI metadata
// (containerMeta as JSON), in the pod manifest with the app.
const (
	containerIDAnnotation   = "rkt-ng.io/cri/container-id"
	containerMetaAnnotation = "rkt-ng.io/cri/container"
)

// containerMeta is what a container keeps of its ContainerConfig.
type containerMeta struct {
	Name        string            `json:"name"`
	Attempt     uint32            `json:"attempt"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Image is the image reference as the kubelet gave it; ImageRef is
	// what it resolved to (the argument AppAdd took).
	Image    string      `json:"image"`
	ImageRef string      `json:"imageRef"`
	LogPath  string      `json:"logPath,omitempty"`
	Mounts   []mountMeta `json:"mounts,omitempty"`
	Volumes  []string    `json:"volumes,omitempty"`
	Limits   *limitsMeta `json:"limits,omitempty"`
}

type mountMeta struct {
	ContainerPath string `json:"containerPath"`
	HostPath      string `json:"hostPath"`
	ReadOnly      bool   `json:"readonly,omitempty"`
}

type limitsMeta struct {
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	CPUShares   int64 `json:"cpuShares,omitempty"`
	CPUQuota    int64 `json:"cpuQuota,omitempty"`
	CPUPeriod   int64 `json:"cpuPeriod,omitempty"`
}

// container is a container found on disk.
type container struct {
	id    string
	app   string
	sb    sandbox
	meta  containerMeta
	state stage0.AppState
}

// newContainerID returns 64 lowercase hex digits.
func newContainerID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// appNameFor derives an app name (an ACName) from a container's name and
// attempt: lowercase letters, digits and dashes.
func appNameFor(name string, attempt uint32) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	base := strings.TrimSuffix(b.String(), "-")
	if base == "" {
		base = "container"
	}
	if len(base) > 200 {
		base = base[:200]
	}
	return fmt.Sprintf("%s-%d", base, attempt)
}

// containersOf reads the containers of a sandbox: the apps of its pod
// manifest that have a container ID, with their states.
func containersOf(c *stage0.Config, sb sandbox) ([]container, error) {
	b, err := os.ReadFile(sb.pod.ManifestPath())
	if err != nil {
		return nil, err
	}
	pm, err := manifests.DecodePod(b)
	if err != nil {
		return nil, err
	}
	states, err := c.AppList(sb.pod.UUID)
	if err != nil {
		return nil, err
	}
	byName := map[string]stage0.AppState{}
	for _, st := range states {
		byName[st.Name] = st
	}
	removed := readRemoved(sb.pod)
	var out []container
	for _, ra := range pm.Apps {
		ct, ok := containerOf(ra)
		if !ok || removed[ct.id] {
			continue
		}
		ct.sb, ct.state = sb, byName[ct.app]
		out = append(out, ct)
	}
	return out, nil
}

func containerOf(ra schema.RuntimeApp) (container, bool) {
	id, ok := ra.Annotations.Get(containerIDAnnotation)
	if !ok {
		return container{}, false
	}
	ct := container{id: id, app: ra.Name.String()}
	if v, ok := ra.Annotations.Get(containerMetaAnnotation); ok {
		json.Unmarshal([]byte(v), &ct.meta)
	}
	return ct, true
}

// listContainers lists the containers of every sandbox (or of one).
func (s *Server) listContainers(sandboxID string) ([]container, error) {
	var sbs []sandbox
	if sandboxID != "" {
		sb, err := s.findSandbox(sandboxID)
		if status.Code(err) == codes.NotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		sbs = []sandbox{sb}
	} else {
		all, err := s.listSandboxes()
		if err != nil {
			return nil, err
		}
		sbs = all
	}
	var out []container
	for _, sb := range sbs {
		cs, err := containersOf(s.stage0, sb)
		if err != nil {
			// A pod that went away while we listed.
			s.log.Debug("list containers", "pod", sb.pod.UUID, "err", err)
			continue
		}
		out = append(out, cs...)
	}
	return out, nil
}

// ResolveContainer finds a container by its full ID or a unique prefix and
// returns its pod UUID and app name.
func (s *Server) ResolveContainer(id string) (podUUID, app string, err error) {
	ct, err := s.findContainer(id)
	if err != nil {
		return "", "", err
	}
	return ct.sb.pod.UUID, ct.app, nil
}

func (s *Server) findContainer(id string) (container, error) {
	if id == "" {
		return container{}, status.Error(codes.InvalidArgument, "container id is required")
	}
	all, err := s.listContainers("")
	if err != nil {
		return container{}, err
	}
	return byIDPrefix(all, func(x container) string { return x.id }, id, "container")
}

// grpcError maps a stage0 error to a status.
func grpcError(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, stage0.ErrNoApp), errors.Is(err, pods.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, pods.ErrBadState), errors.Is(err, stage0.ErrNotSandbox):
		code = codes.FailedPrecondition
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Errorf(code, "%s: %v", op, err)
}

// CreateContainer adds an app to a sandbox's pod (created, not started).
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	sb, err := s.findSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if !sb.ready() {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", sb.pod.UUID)
	}
	cc := req.GetConfig()
	if cc.GetMetadata().GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "container config: metadata name is required")
	}
	if cc.GetImage().GetImage() == "" {
		return nil, status.Error(codes.InvalidArgument, "container config: image is required")
	}
	ref := cc.Image.Image
	image := ref
	if s.resolve != nil {
		if image, err = s.resolve.Resolve(ref); err != nil {
			return nil, grpcError("image "+ref, err)
		}
	}
	id, err := newContainerID()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "container id: %v", err)
	}
	entrypoint, err := s.imageEntrypoint(ctx, image)
	if err != nil {
		return nil, err
	}
	spec, meta, err := containerSpec(id, cc, sb.meta, image, entrypoint)
	if err != nil {
		return nil, err
	}
	for i, m := range cc.Mounts {
		if m.SelinuxRelabel && selinuxEnabled() {
			return nil, status.Errorf(codes.Unimplemented, "mount %s: SELinux relabeling is not supported", m.ContainerPath)
		}
		// As the kubelet's other runtimes do, a missing host path is made
		// a directory, and a symlink is followed (rkt binds no symlink).
		// The host path is the kubelet's, not a pod's.
		if _, err := os.Stat(m.HostPath); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(m.HostPath, 0o755); err != nil {
				return nil, status.Errorf(codes.Unknown, "mount %s: %v", m.HostPath, err)
			}
		}
		real, err := filepath.EvalSymlinks(m.HostPath)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "mount %s: %v", m.HostPath, err)
		}
		spec.Volumes[i].Source = real
	}
	if meta.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(meta.LogPath), 0o755); err != nil {
			return nil, status.Errorf(codes.Unknown, "log directory: %v", err)
		}
	}
	spec.Name = appNameFor(cc.Metadata.Name, cc.Metadata.Attempt)
	spec.CRILogPath = meta.LogPath
	if _, err := s.stage0.AppAdd(ctx, sb.pod.UUID, spec, stage0.EnvSources{}, "never"); err != nil {
		return nil, grpcError("create container", err)
	}
	s.log.Info("container created", "pod", sb.pod.UUID, "app", spec.Name, "container", id)
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// selinuxEnabled reports whether the host enforces or logs SELinux.
func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// UpdateContainerResources changes a running container's memory and CPU
// limits in its cgroup (the fields given; a zero field is left as it is).
// Limits outside memory and CPU are refused.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	ct, err := s.findContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	r := req.GetLinux()
	if r == nil {
		if req.GetWindows() != nil {
			return nil, status.Error(codes.InvalidArgument, "windows resources on linux")
		}
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	if r.MemoryLimitInBytes < 0 || r.CpuShares < 0 || r.CpuPeriod < 0 {
		return nil, status.Error(codes.InvalidArgument, "resources: negative limit")
	}
	if r.CpusetCpus != "" || r.CpusetMems != "" || len(r.HugepageLimits) > 0 || len(r.Unified) > 0 || r.MemorySwapLimitInBytes != 0 {
		return nil, status.Error(codes.Unimplemented, "update resources: only memory and cpu limits can be changed")
	}
	if ct.state.State != stage0.AppRunning {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", ct.id)
	}
	cg := s.sandboxCgroups(ct.sb)
	if cg == nil {
		return nil, status.Errorf(codes.Unimplemented, "update resources: pod %s has no host cgroups (its stage1 keeps them elsewhere)", ct.sb.pod.UUID)
	}
	l := limitsMeta{MemoryBytes: r.MemoryLimitInBytes, CPUShares: r.CpuShares, CPUQuota: r.CpuQuota, CPUPeriod: r.CpuPeriod}
	if err := cg.child(ct.app).setLimits(l); err != nil {
		return nil, status.Errorf(codes.Unknown, "update resources of container %s: %v", ct.id, err)
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	ct, err := s.findContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if ct.state.State != stage0.AppCreated {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is %s, not created", ct.id, ct.state.State)
	}
	if err := s.stage0.AppStart(ctx, ct.sb.pod.UUID, ct.app); err != nil {
		return nil, grpcError("start container", err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer stops a running container: its stop signal, then SIGKILL
// after the timeout (or the pod's stop timeout if shorter), at once with a
// timeout of 0. Stopping a container that does not run succeeds.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	ct, err := s.findContainer(req.GetContainerId())
	if status.Code(err) == codes.NotFound {
		// Stopping is idempotent, also for a container already removed.
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if ct.state.State != stage0.AppRunning {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err := s.stopApp(ctx, ct, req.Timeout); err != nil {
		if now, ferr := s.findContainer(ct.id); ferr == nil && now.state.State != stage0.AppRunning {
			return &runtimeapi.StopContainerResponse{}, nil
		}
		return nil, grpcError("stop container", err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// stopApp stops a running app: at once (SIGKILL) without a timeout, else
// its stop signal, then SIGKILL after the pod's stop timeout or after
// timeout seconds, whichever comes first.
func (s *Server) stopApp(ctx context.Context, ct container, timeout int64) error {
	uuid := ct.sb.pod.UUID
	if timeout <= 0 {
		return s.stage0.AppStop(ctx, uuid, ct.app, true)
	}
	done := make(chan error, 1)
	go func() { done <- s.stage0.AppStop(ctx, uuid, ct.app, false) }()
	t := time.NewTimer(time.Duration(timeout) * time.Second)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		if err := s.stage0.Kill(ctx, uuid, ct.app, "SIGKILL"); err != nil {
			s.log.Warn("kill after stop timeout", "pod", uuid, "app", ct.app, "err", err)
		}
		return <-done
	}
}

// RemoveContainer removes a container, stopping it first if it runs. An
// unknown ID is not an error.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	ct, err := s.findContainer(req.GetContainerId())
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if ct.sb.ready() {
		if err := s.stage0.AppRm(ctx, ct.sb.pod.UUID, ct.app); err != nil {
			return nil, grpcError("remove container", err)
		}
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	// The pod no longer runs: its manifest stays as it ended, and the
	// container is only marked removed until the sandbox is.
	if err := markRemoved(ct.sb.pod, ct.id); err != nil {
		return nil, status.Errorf(codes.Unknown, "remove container: %v", err)
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// ContainerStatus reports a container's state, times, exit and metadata.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	ct, err := s.findContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st := &runtimeapi.ContainerStatus{
		Id:          ct.id,
		Metadata:    &runtimeapi.ContainerMetadata{Name: ct.meta.Name, Attempt: ct.meta.Attempt},
		State:       ct.criState(),
		Image:       &runtimeapi.ImageSpec{Image: ct.meta.Image},
		ImageRef:    s.imageID(ct.meta.ImageRef),
		ImageId:     s.imageID(ct.meta.ImageRef),
		Labels:      ct.meta.Labels,
		Annotations: ct.meta.Annotations,
		LogPath:     ct.meta.LogPath,
	}
	if ct.state.Created != nil {
		st.CreatedAt = ct.state.Created.UnixNano()
	}
	if ct.state.Started != nil {
		st.StartedAt = ct.state.Started.UnixNano()
	}
	if ct.state.Finished != nil {
		st.FinishedAt = ct.state.Finished.UnixNano()
	}
	if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		st.ExitCode, st.Reason = ct.exit()
		// The app's cgroup stays while its pod runs.
		if cg := s.sandboxCgroups(ct.sb); cg != nil && st.ExitCode != 0 && cg.child(ct.app).oomKilled() {
			st.Reason = "OOMKilled"
		}
		if st.FinishedAt == 0 && st.StartedAt != 0 {
			// The pod ended without recording the app's exit.
			if t := ct.sb.pod.ExitedAt(); !t.IsZero() {
				st.FinishedAt = t.UnixNano()
			}
		}
	}
	for _, m := range ct.meta.Mounts {
		st.Mounts = append(st.Mounts, &runtimeapi.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.ReadOnly})
	}
	if cg := s.sandboxCgroups(ct.sb); cg != nil && ct.state.State == stage0.AppRunning {
		// A running container's limits as they are now (UpdateContainerResources).
		if l, ok := cg.child(ct.app).limits(); ok {
			ct.meta.Limits = &l
		}
	}
	if l := ct.meta.Limits; l != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{
			MemoryLimitInBytes: l.MemoryBytes, CpuShares: l.CPUShares, CpuQuota: l.CPUQuota, CpuPeriod: l.CPUPeriod,
		}}
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: st}
	if req.GetVerbose() {
		b, _ := json.Marshal(map[string]any{"pod": ct.sb.pod.UUID, "app": ct.app, "state": ct.state})
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}

func (ct *container) criState() runtimeapi.ContainerState {
	switch ct.state.State {
	case stage0.AppCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case stage0.AppRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case stage0.AppExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// exit is an exited container's code and reason.
func (ct *container) exit() (int32, string) {
	if ct.state.ExitCode == nil {
		// Killed with its pod, without a recorded status.
		return 137, "Error"
	}
	code := int32(*ct.state.ExitCode)
	if code == 0 {
		return 0, "Completed"
	}
	return code, "Error"
}

// imageID is the CRI image ID of a store image (the ImageService's name
// for it), or the store ID without an ImageService record.
func (s *Server) imageID(storeID string) string {
	if s.resolve != nil {
		if id := s.resolve.ImageID(storeID); id != "" {
			return id
		}
	}
	return storeID
}

// ListContainers lists the containers that match the filter.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	all, err := s.listContainers(f.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	var out []*runtimeapi.Container
	for _, ct := range all {
		if !containerMatches(f, ct.id, ct.sb.pod.UUID, ct.criState(), ct.meta.Labels) {
			continue
		}
		c := &runtimeapi.Container{
			Id: ct.id, PodSandboxId: ct.sb.pod.UUID,
			Metadata: &runtimeapi.ContainerMetadata{Name: ct.meta.Name, Attempt: ct.meta.Attempt},
			Image:    &runtimeapi.ImageSpec{Image: ct.meta.Image}, ImageRef: s.imageID(ct.meta.ImageRef), ImageId: s.imageID(ct.meta.ImageRef),
			State: ct.criState(), Labels: ct.meta.Labels, Annotations: ct.meta.Annotations,
		}
		if ct.state.Created != nil {
			c.CreatedAt = ct.state.Created.UnixNano()
		}
		out = append(out, c)
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// containerMatches applies a ContainerFilter: ID (or prefix), sandbox ID
// (or prefix), state and label selector.
func containerMatches(f *runtimeapi.ContainerFilter, id, sandboxID string, st runtimeapi.ContainerState, labels map[string]string) bool {
	if f == nil {
		return true
	}
	if f.Id != "" && !strings.HasPrefix(id, f.Id) {
		return false
	}
	if f.PodSandboxId != "" && !strings.HasPrefix(sandboxID, f.PodSandboxId) {
		return false
	}
	if f.State != nil && f.State.State != st {
		return false
	}
	return labelsMatch(f.LabelSelector, labels)
}

// ReopenContainerLog has the pod reopen a running container's CRI log
// (after the kubelet rotated it).
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	ct, err := s.findContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if ct.state.State != stage0.AppRunning {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", ct.id)
	}
	if ct.meta.LogPath == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s has no log path", ct.id)
	}
	if err := s.stage0.AppReopenLog(ctx, ct.sb.pod.UUID, ct.app); err != nil {
		return nil, grpcError("reopen container log", err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
