package cri

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/stage0"
)

// cpuUsage and memUsage render a cgroup's usage at time ts.
func cpuMem(u usage, ts int64) (*runtimeapi.CpuUsage, *runtimeapi.MemoryUsage) {
	var cpu *runtimeapi.CpuUsage
	var mem *runtimeapi.MemoryUsage
	if u.haveCPU {
		cpu = &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: u.cpuNanos}}
	}
	if u.haveMem {
		mem = &runtimeapi.MemoryUsage{
			Timestamp:       ts,
			UsageBytes:      &runtimeapi.UInt64Value{Value: u.memUsage},
			WorkingSetBytes: &runtimeapi.UInt64Value{Value: u.workingSet},
			PageFaults:      &runtimeapi.UInt64Value{Value: u.pageFaults},
			MajorPageFaults: &runtimeapi.UInt64Value{Value: u.majorFaults},
		}
		if u.haveRSS {
			mem.RssBytes = &runtimeapi.UInt64Value{Value: u.rss}
		}
	}
	return cpu, mem
}

// containerStats reads a container's cgroup; a container that does not
// run has its attributes only.
func (s *Server) containerStats(ct container, pod *cgroupDirs) *runtimeapi.ContainerStats {
	st := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: ct.id, Metadata: &runtimeapi.ContainerMetadata{Name: ct.meta.Name, Attempt: ct.meta.Attempt},
		Labels: ct.meta.Labels, Annotations: ct.meta.Annotations,
	}}
	if pod == nil || ct.state.State != stage0.AppRunning {
		return st
	}
	u, err := pod.child(ct.app).read()
	if err != nil {
		s.log.Debug("container stats", "pod", ct.sb.pod.UUID, "app", ct.app, "err", err)
		return st
	}
	st.Cpu, st.Memory = cpuMem(u, time.Now().UnixNano())
	return st
}

// sandboxCgroups finds a running sandbox's cgroups, or nil.
func (s *Server) sandboxCgroups(sb sandbox) *cgroupDirs {
	if !sb.ready() {
		return nil
	}
	d, err := podCgroups(sb.pod.SubcgroupPath())
	if err != nil {
		s.log.Debug("pod cgroups", "pod", sb.pod.UUID, "err", err)
		return nil
	}
	return &d
}

// ContainerStats reports a container's CPU and memory usage.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	ct, err := s.findContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.containerStats(ct, s.sandboxCgroups(ct.sb))}, nil
}

// ListContainerStats reports the usage of the containers that match the
// filter (ID, sandbox ID, labels).
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	all, err := s.listContainers(f.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	cf := &runtimeapi.ContainerFilter{Id: f.GetId(), PodSandboxId: f.GetPodSandboxId(), LabelSelector: f.GetLabelSelector()}
	cgs := map[string]*cgroupDirs{}
	var out []*runtimeapi.ContainerStats
	for _, ct := range all {
		if !containerMatches(cf, ct.id, ct.sb.pod.UUID, ct.criState(), ct.meta.Labels) {
			continue
		}
		cg, ok := cgs[ct.sb.pod.UUID]
		if !ok {
			cg = s.sandboxCgroups(ct.sb)
			cgs[ct.sb.pod.UUID] = cg
		}
		out = append(out, s.containerStats(ct, cg))
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

func (s *Server) sandboxStats(sb sandbox) *runtimeapi.PodSandboxStats {
	st := &runtimeapi.PodSandboxStats{Attributes: &runtimeapi.PodSandboxAttributes{
		Id: sb.pod.UUID, Metadata: sb.metadata(), Labels: sb.meta.Labels, Annotations: sb.meta.Annotations,
	}}
	cg := s.sandboxCgroups(sb)
	lx := &runtimeapi.LinuxPodSandboxStats{}
	if cg != nil {
		if u, err := cg.read(); err == nil {
			lx.Cpu, lx.Memory = cpuMem(u, time.Now().UnixNano())
		}
	}
	if cs, err := containersOf(s.stage0, sb); err == nil {
		for _, ct := range cs {
			lx.Containers = append(lx.Containers, s.containerStats(ct, cg))
		}
	}
	st.Linux = lx
	return st
}

// PodSandboxStats reports a sandbox's usage and its containers'.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.findSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.sandboxStats(sb)}, nil
}

// ListPodSandboxStats reports the usage of the sandboxes that match the
// filter (ID, labels).
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	all, err := s.listSandboxes()
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	pf := &runtimeapi.PodSandboxFilter{Id: f.GetId(), LabelSelector: f.GetLabelSelector()}
	var out []*runtimeapi.PodSandboxStats
	for _, sb := range all {
		if sandboxMatches(pf, sb.pod.UUID, sb.state(), sb.meta.Labels) {
			out = append(out, s.sandboxStats(sb))
		}
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

// ListMetricDescriptors is not supported: rkt-cri reports usage through
// the stats calls (ContainerStats, PodSandboxStats), not as Prometheus
// metrics.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return nil, errNoMetrics
}

// ListPodSandboxMetrics is not supported (see ListMetricDescriptors).
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	return nil, errNoMetrics
}

var errNoMetrics = status.Error(codes.Unimplemented, "CRI metrics are not supported: rkt-cri reports usage through ContainerStats and PodSandboxStats")

// RuntimeConfig reports the cgroup driver: rkt's stage1 makes cgroups
// through the cgroup filesystem, not systemd.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}
