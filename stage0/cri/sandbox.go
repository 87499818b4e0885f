package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage0"
)

// sandboxAnnotation is the pod annotation holding the CRI metadata of a
// sandbox (sandboxMeta as JSON); pods without it are not rkt-cri's.
const sandboxAnnotation = "rkt-ng.io/cri/sandbox"

// podStopTimeout is the sandboxes' --stop-timeout: how long a stopping
// app gets between its stop signal and SIGKILL at most.
const podStopTimeout = 30 * time.Second

// sandboxStartTimeout bounds how long RunPodSandbox waits for the pod.
const sandboxStartTimeout = 2 * time.Minute

// sandboxMeta is what a sandbox keeps of its PodSandboxConfig, written
// with the pod (its manifest's annotation) so that it is there as soon as
// the pod is.
type sandboxMeta struct {
	Name           string            `json:"name"`
	UID            string            `json:"uid"`
	Namespace      string            `json:"namespace"`
	Attempt        uint32            `json:"attempt"`
	Labels         map[string]string `json:"labels,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	LogDirectory   string            `json:"logDirectory,omitempty"`
	Hostname       string            `json:"hostname,omitempty"`
	RuntimeHandler string            `json:"runtimeHandler,omitempty"`
	// Namespace modes (runtimeapi.NamespaceMode values).
	NetworkMode int32 `json:"networkMode"`
	PIDMode     int32 `json:"pidMode"`
	IPCMode     int32 `json:"ipcMode"`
}

// sandbox is a sandbox found on disk.
type sandbox struct {
	pod  *pods.Pod
	meta sandboxMeta
}

func (sb *sandbox) ready() bool { return sb.pod.State() == pods.Running }

func (sb *sandbox) state() runtimeapi.PodSandboxState {
	if sb.ready() {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// sandboxArgs maps a PodSandboxConfig to `rkt app sandbox` arguments
// (after the global flags) and the metadata kept with the pod.
func sandboxArgs(cfg Config, sc *runtimeapi.PodSandboxConfig, runtimeHandler string) ([]string, sandboxMeta, error) {
	md := sc.GetMetadata()
	if md == nil || md.Name == "" || md.Namespace == "" || md.Uid == "" {
		return nil, sandboxMeta{}, status.Error(codes.InvalidArgument, "sandbox config: metadata name, namespace and uid are required")
	}
	if runtimeHandler != "" && runtimeHandler != RuntimeName {
		return nil, sandboxMeta{}, status.Errorf(codes.InvalidArgument, "runtime handler %q: rkt-cri has only the default handler", runtimeHandler)
	}
	meta := sandboxMeta{
		Name: md.Name, UID: md.Uid, Namespace: md.Namespace, Attempt: md.Attempt,
		Labels: sc.Labels, Annotations: sc.Annotations, LogDirectory: sc.LogDirectory,
		Hostname: sc.Hostname, RuntimeHandler: runtimeHandler,
	}
	ns := sc.GetLinux().GetSecurityContext().GetNamespaceOptions()
	meta.NetworkMode, meta.PIDMode, meta.IPCMode = int32(ns.GetNetwork()), int32(ns.GetPid()), int32(ns.GetIpc())
	if ns.GetPid() == runtimeapi.NamespaceMode_NODE {
		return nil, meta, status.Error(codes.Unimplemented, "pid namespace mode NODE: rkt pods always have a PID namespace of their own")
	}
	if ns.GetPid() == runtimeapi.NamespaceMode_TARGET {
		return nil, meta, status.Error(codes.Unimplemented, "pid namespace mode TARGET is not supported")
	}
	if ns.GetNetwork() != runtimeapi.NamespaceMode_NODE && ns.GetNetwork() != runtimeapi.NamespaceMode_POD {
		return nil, meta, status.Errorf(codes.InvalidArgument, "network namespace mode %s: want POD or NODE", ns.GetNetwork())
	}
	sysctls := sc.GetLinux().GetSysctls()
	for _, k := range sortedKeys(sysctls) {
		if !strings.HasPrefix(k, "net.") {
			return nil, meta, status.Errorf(codes.Unimplemented, "sysctl %s: rkt sets only the pod's network namespace sysctls (net.*)", k)
		}
		if ns.GetNetwork() == runtimeapi.NamespaceMode_NODE {
			return nil, meta, status.Errorf(codes.InvalidArgument, "sysctl %s on the host network would change the host", k)
		}
	}
	// A privileged sandbox only allows privileged containers; the pod
	// itself runs no process of the kubelet's, and CreateContainer
	// refuses privileged containers.
	if sc.GetWindows() != nil {
		return nil, meta, status.Error(codes.InvalidArgument, "windows sandbox config on linux")
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, meta, status.Errorf(codes.InvalidArgument, "sandbox metadata: %v", err)
	}
	// The kubelet's default grace period: StopContainer's own timeout
	// applies when it is shorter (stopApp).
	args := []string{"app", "sandbox", "--annotation=" + sandboxAnnotation + "=" + string(b), "--stop-timeout=" + podStopTimeout.String()}
	hostNet := ns.GetNetwork() == runtimeapi.NamespaceMode_NODE
	if hostNet {
		args = append(args, "--net=host")
	} else {
		args = append(args, "--net="+cfg.Network)
	}
	if sc.Hostname != "" {
		if strings.ContainsAny(sc.Hostname, " \t\n/") {
			return nil, meta, status.Errorf(codes.InvalidArgument, "hostname %q is not a valid host name", sc.Hostname)
		}
		args = append(args, "--hostname="+sc.Hostname)
	}
	switch ns.GetIpc() {
	case runtimeapi.NamespaceMode_NODE:
		args = append(args, "--ipc=parent")
	default:
		args = append(args, "--ipc=private")
	}
	if dns := sc.GetDnsConfig(); dns != nil {
		for _, v := range dns.Servers {
			if net.ParseIP(v) == nil {
				return nil, meta, status.Errorf(codes.InvalidArgument, "dns server %q is not an IP address", v)
			}
			args = append(args, "--dns="+v)
		}
		for _, v := range dns.Searches {
			if v == "" || strings.ContainsAny(v, ", \t\n") {
				return nil, meta, status.Errorf(codes.InvalidArgument, "dns search domain %q is malformed", v)
			}
			args = append(args, "--dns-search="+v)
		}
		for _, v := range dns.Options {
			if v == "" || strings.ContainsAny(v, ", \t\n") {
				return nil, meta, status.Errorf(codes.InvalidArgument, "dns option %q is malformed", v)
			}
			args = append(args, "--dns-opt="+v)
		}
	}
	if !hostNet {
		ports, err := portArgs(sc.PortMappings)
		if err != nil {
			return nil, meta, err
		}
		args = append(args, ports...)
	}
	if cfg.PodAnnotationsPassThrough {
		for _, k := range sortedKeys(sc.Annotations) {
			args = append(args, "--user-annotation="+k+"="+sc.Annotations[k])
		}
	}
	for _, k := range sortedKeys(sysctls) {
		args = append(args, "--sysctl="+k+"="+sysctls[k])
	}
	for _, k := range sortedKeys(sc.Labels) {
		args = append(args, "--user-label="+k+"="+sc.Labels[k])
	}
	return args, meta, nil
}

// portArgs maps port mappings to rkt app sandbox's --port
// NAME:PROTOCOL:PODPORT:HOSTIP:HOSTPORT. Mappings without a host port
// publish nothing.
func portArgs(pms []*runtimeapi.PortMapping) ([]string, error) {
	var out []string
	for _, pm := range pms {
		if pm.HostPort <= 0 {
			continue
		}
		var proto string
		switch pm.Protocol {
		case runtimeapi.Protocol_TCP:
			proto = "tcp"
		case runtimeapi.Protocol_UDP:
			proto = "udp"
		default:
			return nil, status.Errorf(codes.Unimplemented, "port mapping protocol %s: rkt forwards tcp and udp only", pm.Protocol)
		}
		if pm.ContainerPort <= 0 || pm.ContainerPort > 65535 || pm.HostPort > 65535 {
			return nil, status.Errorf(codes.InvalidArgument, "port mapping %d:%d: ports must be 1-65535", pm.HostPort, pm.ContainerPort)
		}
		ip := pm.HostIp
		if ip == "" {
			ip = "0.0.0.0"
		}
		if net.ParseIP(ip) == nil {
			return nil, status.Errorf(codes.InvalidArgument, "port mapping host IP %q is not an IP address", pm.HostIp)
		}
		name := fmt.Sprintf("%s-%d-%d", proto, pm.ContainerPort, pm.HostPort)
		out = append(out, fmt.Sprintf("--port=%s:%s:%d:%s:%d", name, proto, pm.ContainerPort, ip, pm.HostPort))
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// stateDir is rkt-cri's own directory in the rkt data directory: the
// output of the sandbox processes, one file each.
func (s *Server) stateDir() string { return filepath.Join(s.stage0.Dir, "cri") }

func (s *Server) sandboxOutput(uuid string) string {
	return filepath.Join(s.stateDir(), "sandbox-"+uuid+".log")
}

// RunPodSandbox starts a `rkt app sandbox` pod in a session of its own
// and waits until it runs. On failure the pod is stopped and removed, and
// the error carries the tail of its output.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	args, _, err := sandboxArgs(s.cfg, req.GetConfig(), req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.stateDir(), 0o700); err != nil {
		return nil, status.Errorf(codes.Internal, "state dir: %v", err)
	}
	tmp, err := os.MkdirTemp(s.stateDir(), "run-")
	if err != nil {
		return nil, status.Errorf(codes.Internal, "state dir: %v", err)
	}
	defer os.RemoveAll(tmp)
	// Held while this call lasts: a run directory whose lock is free was
	// left by a killed rkt-cri (sweepRunDirs).
	lock, err := flock.OpenDir(tmp)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "state dir: %v", err)
	}
	defer lock.Close()
	if err := lock.Exclusive(); err != nil {
		return nil, status.Errorf(codes.Internal, "state dir: %v", err)
	}
	uuidFile := filepath.Join(tmp, "uuid")
	outPath := filepath.Join(tmp, "output")
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "sandbox output: %v", err)
	}
	defer out.Close()
	argv := s.globalArgs()
	argv = append(argv, args[:2]...)
	argv = append(argv, "--uuid-file-save="+uuidFile)
	argv = append(argv, args[2:]...)
	cmd := exec.Command(s.rkt, argv...)
	cmd.Stdout, cmd.Stderr = out, out
	// A session of its own: the sandbox outlives rkt-cri and its signals.
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	s.log.Debug("starting sandbox", "argv", strings.Join(argv, " "))
	if err := cmd.Start(); err != nil {
		return nil, status.Errorf(codes.Internal, "start rkt app sandbox: %v", err)
	}
	exited := s.reap(cmd)
	uuid, err := s.waitSandbox(ctx, uuidFile, exited)
	if err == nil {
		// Keep the sandbox's output beside rkt-cri's other state; the
		// process goes on writing to the same file.
		if rerr := os.Rename(outPath, s.sandboxOutput(uuid)); rerr != nil {
			s.log.Warn("keep sandbox output", "pod", uuid, "err", rerr)
		}
		s.log.Info("sandbox running", "pod", uuid, "name", req.Config.Metadata.Name, "namespace", req.Config.Metadata.Namespace)
		return &runtimeapi.RunPodSandboxResponse{PodSandboxId: uuid}, nil
	}
	// Leave nothing behind: stop the process, then remove its pod.
	if cmd.Process != nil {
		cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	if uuid != "" {
		if rerr := s.removePod(context.WithoutCancel(ctx), uuid); rerr != nil {
			s.log.Warn("remove failed sandbox", "pod", uuid, "err", rerr)
		}
	}
	tail := tailFile(outPath, 2048)
	if tail != "" {
		return nil, status.Errorf(codes.Unknown, "run pod sandbox: %v: %s", err, tail)
	}
	return nil, status.Errorf(codes.Unknown, "run pod sandbox: %v", err)
}

// sweepRunDirs removes the run-* directories that RunPodSandbox calls of a
// killed rkt-cri left behind (their lock is free). A sandbox that came up
// anyway keeps its output, under its UUID as usual.
func (s *Server) sweepRunDirs() {
	dirs, _ := filepath.Glob(filepath.Join(s.stateDir(), "run-*"))
	for _, d := range dirs {
		l, err := flock.OpenDir(d)
		if err != nil {
			continue
		}
		if l.TryExclusive() == nil {
			if b, err := os.ReadFile(filepath.Join(d, "uuid")); err == nil {
				if p, err := s.getPod(strings.TrimSpace(string(b))); err == nil {
					os.Rename(filepath.Join(d, "output"), s.sandboxOutput(p.UUID))
				}
			}
			if err := os.RemoveAll(d); err != nil {
				s.log.Warn("remove stale run directory", "dir", d, "err", err)
			}
		}
		l.Close()
	}
}

// globalArgs are rkt's global flags for this server's data directory.
func (s *Server) globalArgs() []string {
	// rkt reads net.d below its local configuration directory.
	a := []string{"--dir=" + s.stage0.Dir, "--local-config=" + s.cfg.LocalConfig()}
	if s.stage0.Debug {
		a = append(a, "--debug")
	}
	return a
}

// reap waits for a sandbox process in a goroutine that ends with it; the
// returned channel is closed then.
func (s *Server) reap(cmd *exec.Cmd) <-chan struct{} {
	done := make(chan struct{})
	pid := cmd.Process.Pid
	s.mu.Lock()
	s.sandboxes[pid] = cmd.Process
	s.mu.Unlock()
	go func() {
		defer close(done)
		err := cmd.Wait()
		s.mu.Lock()
		delete(s.sandboxes, pid)
		s.mu.Unlock()
		s.log.Debug("sandbox process ended", "pid", pid, "err", err)
	}()
	return done
}

// waitSandbox waits until the sandbox's pod runs and its stage1 is ready.
// It returns the pod's UUID as soon as it is known, also with an error.
func (s *Server) waitSandbox(ctx context.Context, uuidFile string, exited <-chan struct{}) (string, error) {
	deadline := time.NewTimer(sandboxStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	uuid := ""
	for {
		if uuid == "" {
			if b, err := os.ReadFile(uuidFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				uuid = strings.TrimSpace(string(b))
			}
		}
		if uuid != "" {
			if p, err := s.getPod(uuid); err == nil && p.State() == pods.Running && p.IsReady() {
				return uuid, nil
			}
		}
		select {
		case <-ctx.Done():
			return uuid, ctx.Err()
		case <-deadline.C:
			return uuid, fmt.Errorf("sandbox not running after %v", sandboxStartTimeout)
		case <-exited:
			if uuid == "" {
				if b, err := os.ReadFile(uuidFile); err == nil {
					uuid = strings.TrimSpace(string(b))
				}
			}
			return uuid, errors.New("rkt app sandbox exited")
		case <-tick.C:
		}
	}
}

// tailFile returns the last n bytes of a file, trimmed, on one line.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, 0)
	}
	b := make([]byte, n)
	k, _ := f.Read(b)
	return strings.Join(strings.Fields(strings.ReplaceAll(string(b[:k]), "\n", " | ")), " ")
}

func (s *Server) getPod(uuid string) (*pods.Pod, error) {
	pd, err := s.stage0.Pods()
	if err != nil {
		return nil, err
	}
	return pd.Get(uuid)
}

// readSandbox reads a pod's CRI metadata; ok is false for pods that are
// not rkt-cri's sandboxes.
func readSandbox(p *pods.Pod) (sandbox, bool) {
	b, err := os.ReadFile(p.ManifestPath())
	if err != nil {
		return sandbox{}, false
	}
	pm, err := manifests.DecodePod(b)
	if err != nil {
		return sandbox{}, false
	}
	v, ok := pm.Annotations.Get(sandboxAnnotation)
	if !ok {
		return sandbox{}, false
	}
	var meta sandboxMeta
	if json.Unmarshal([]byte(v), &meta) != nil {
		return sandbox{}, false
	}
	return sandbox{pod: p, meta: meta}, true
}

// listSandboxes lists rkt-cri's sandboxes that run or ran: pods still
// being made or removed are left out.
func (s *Server) listSandboxes() ([]sandbox, error) {
	pd, err := s.stage0.Pods()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "pods: %v", err)
	}
	ps, err := pd.List()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "pods: %v", err)
	}
	var out []sandbox
	for _, p := range ps {
		switch p.State() {
		case pods.Embryo, pods.Preparing, pods.AbortedPrepare, pods.Prepared, pods.Deleting, pods.ExitedDeleting:
			// Not yet a sandbox (RunPodSandbox answers once it runs), or
			// already on its way out.
			continue
		}
		if p.IsGarbage() {
			continue
		}
		if sb, ok := readSandbox(p); ok {
			out = append(out, sb)
		}
	}
	return out, nil
}

// findSandbox resolves a sandbox ID: a full pod UUID or a unique prefix
// of one of rkt-cri's sandboxes.
func (s *Server) findSandbox(id string) (sandbox, error) {
	if id == "" {
		return sandbox{}, status.Error(codes.InvalidArgument, "pod sandbox id is required")
	}
	all, err := s.listSandboxes()
	if err != nil {
		return sandbox{}, err
	}
	return byIDPrefix(all, func(x sandbox) string { return x.pod.UUID }, id, "pod sandbox")
}

// StopPodSandbox stops the sandbox's containers and its pod. Stopping a
// stopped sandbox succeeds.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.findSandbox(req.GetPodSandboxId())
	if status.Code(err) == codes.NotFound {
		// Stopping is idempotent, also for a sandbox already removed.
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (s *Server) stopSandbox(ctx context.Context, sb sandbox) error {
	uuid := sb.pod.UUID
	if !sb.ready() {
		return nil
	}
	// The pod's stop stops its apps (their stop signal, then SIGKILL
	// after the pod's stop timeout).
	if _, err := s.stage0.Stop(ctx, uuid, false); err != nil {
		if p, gerr := s.getPod(uuid); gerr == nil && p.State() != pods.Running {
			return nil
		}
		return status.Errorf(codes.Unknown, "stop pod %s: %v", uuid, err)
	}
	if err := s.waitStopped(ctx, uuid, podStopTimeout+10*time.Second); err != nil {
		if _, ferr := s.stage0.Stop(ctx, uuid, true); ferr != nil {
			s.log.Warn("force stop", "pod", uuid, "err", ferr)
		}
		if err := s.waitStopped(ctx, uuid, 30*time.Second); err != nil {
			return status.Errorf(codes.DeadlineExceeded, "stop pod %s: %v", uuid, err)
		}
	}
	return nil
}

func (s *Server) waitStopped(ctx context.Context, uuid string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		p, err := s.getPod(uuid)
		if err != nil || p.State() != pods.Running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still running after %v", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RemovePodSandbox stops the sandbox if it runs and removes its pod. An
// unknown ID is not an error (the CRI asks removal to be idempotent).
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.findSandbox(req.GetPodSandboxId())
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	uuid := sb.pod.UUID
	if err := s.removePod(ctx, uuid); err != nil {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Errorf(codes.Unknown, "remove pod %s: %v", uuid, err)
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// removePod removes a pod that ended (rkt rm), waiting up to 10 seconds
// for its stage1 to finish cleaning up after the stop, and the sandbox's
// output file. A pod already gone is no error.
func (s *Server) removePod(ctx context.Context, uuid string) error {
	var err error
	for range 100 {
		_, err = s.stage0.Remove(ctx, uuid)
		if err == nil || errors.Is(err, pods.ErrNotFound) {
			err = nil
			break
		}
		if !errors.Is(err, pods.ErrRunning) && !errors.Is(err, pods.ErrLocked) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err == nil {
		os.Remove(s.sandboxOutput(uuid))
	}
	return err
}

// PodSandboxStatus reports a sandbox's state, network and metadata.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.findSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st := &runtimeapi.PodSandboxStatus{
		Id:          sb.pod.UUID,
		Metadata:    sb.metadata(),
		State:       sb.state(),
		CreatedAt:   sb.pod.Created().UnixNano(),
		Labels:      sb.meta.Labels,
		Annotations: sb.meta.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: runtimeapi.NamespaceMode(sb.meta.NetworkMode),
			Pid:     runtimeapi.NamespaceMode(sb.meta.PIDMode),
			Ipc:     runtimeapi.NamespaceMode(sb.meta.IPCMode),
		}}},
		RuntimeHandler: sb.meta.RuntimeHandler,
	}
	if runtimeapi.NamespaceMode(sb.meta.NetworkMode) != runtimeapi.NamespaceMode_NODE {
		st.Network = podNetwork(sb.pod)
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if req.GetVerbose() {
		b, _ := json.Marshal(map[string]any{"pod": sb.pod.UUID, "state": string(sb.pod.State()), "meta": sb.meta})
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}

func (sb *sandbox) metadata() *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: sb.meta.Name, Uid: sb.meta.UID, Namespace: sb.meta.Namespace, Attempt: sb.meta.Attempt}
}

// podNetwork is the pod's first IPv4 (else IPv6) address and the others.
func podNetwork(p *pods.Pod) *runtimeapi.PodSandboxNetworkStatus {
	st := stage0.StatusOf(p)
	var ips []string
	for _, n := range st.Networks {
		for _, ip := range n.IPs {
			ips = append(ips, strings.Split(ip, "/")[0])
		}
	}
	sort.SliceStable(ips, func(i, j int) bool { return !strings.Contains(ips[i], ":") && strings.Contains(ips[j], ":") })
	ns := &runtimeapi.PodSandboxNetworkStatus{}
	if len(ips) > 0 {
		ns.Ip = ips[0]
		for _, ip := range ips[1:] {
			ns.AdditionalIps = append(ns.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return ns
}

// ListPodSandbox lists the sandboxes that match the filter.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	all, err := s.listSandboxes()
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	var out []*runtimeapi.PodSandbox
	for _, sb := range all {
		if !sandboxMatches(f, sb.pod.UUID, sb.state(), sb.meta.Labels) {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id: sb.pod.UUID, Metadata: sb.metadata(), State: sb.state(), CreatedAt: sb.pod.Created().UnixNano(),
			Labels: sb.meta.Labels, Annotations: sb.meta.Annotations, RuntimeHandler: sb.meta.RuntimeHandler,
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// sandboxMatches applies a PodSandboxFilter: ID (or prefix), state and
// label selector (every pair must match).
func sandboxMatches(f *runtimeapi.PodSandboxFilter, id string, st runtimeapi.PodSandboxState, labels map[string]string) bool {
	if f == nil {
		return true
	}
	if f.Id != "" && !strings.HasPrefix(id, f.Id) {
		return false
	}
	if f.State != nil && f.State.State != st {
		return false
	}
	return labelsMatch(f.LabelSelector, labels)
}

func labelsMatch(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// itoa is strconv.Itoa for the int types of the API.
func itoa[T ~int32 | ~int64 | ~uint32](v T) string { return strconv.FormatInt(int64(v), 10) }
