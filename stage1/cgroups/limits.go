package cgroups

import (
	"errors"
	"fmt"
	"math"

	"github.com/appc/spec/schema/types"
	"github.com/appc/spec/schema/types/resource"

	"github.com/rkt-ng/rkt/manifests"
)

// Limits are the resource limits of a pod or app cgroup. A nil field leaves
// the corresponding setting untouched; a negative MemoryBytes, CPUMilli or
// PidsMax removes the limit ("max").
type Limits struct {
	// MemoryBytes is the hard memory limit (v1 memory.limit_in_bytes, v2
	// memory.max).
	MemoryBytes *int64
	// CPUMilli is the CPU bandwidth limit in millicores (v1
	// cpu.cfs_quota_us, v2 cpu.max, both with a 100ms period).
	CPUMilli *int64
	// CPUShares is the relative CPU weight in v1 shares, 2..262144 (v1
	// cpu.shares, v2 cpu.weight converted by [SharesToWeight]).
	CPUShares *uint64
	// PidsMax is the maximum number of tasks (pids.max).
	PidsMax *int64
}

// controllers returns the cgroup controllers that applying l needs.
func (l Limits) controllers() []string {
	var cs []string
	if l.MemoryBytes != nil {
		cs = append(cs, "memory")
	}
	if l.CPUMilli != nil || l.CPUShares != nil {
		cs = append(cs, "cpu")
	}
	if l.PidsMax != nil {
		cs = append(cs, "pids")
	}
	return cs
}

// IsZero reports whether l sets nothing.
func (l Limits) IsZero() bool {
	return l.MemoryBytes == nil && l.CPUMilli == nil && l.CPUShares == nil && l.PidsMax == nil
}

const (
	// CFSPeriodUS is the CFS bandwidth period used for CPU limits, 100ms as
	// systemd and Kubernetes use.
	CFSPeriodUS = 100000
	// minCFSQuotaUS is the smallest quota the kernel accepts
	// (kernel/sched/core.c, min_cfs_quota_period is 1ms).
	minCFSQuotaUS = 1000

	minShares = 2
	maxShares = 262144

	// maxQuantityLen bounds the input of the quantity parser: no valid
	// memory or CPU amount is longer, and the appc parser works with big
	// numbers.
	maxQuantityLen = 64
)

// ParseMemory parses a memory amount in appc/Kubernetes quantity notation into
// bytes: "1G" is 10^9, "1Gi" is 2^30, "512Mi", "1e9", "1.5Gi". The amount must
// be a positive whole number of bytes that fits in an int64.
func ParseMemory(s string) (int64, error) {
	q, err := parseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("invalid memory amount %q: %w", s, err)
	}
	v, err := memoryBytes(&q)
	if err != nil {
		return 0, fmt.Errorf("invalid memory amount %q: %w", s, err)
	}
	return v, nil
}

// ParseCPU parses a CPU amount in appc/Kubernetes quantity notation into
// millicores: "500m" is 500, "2" is 2000, "0.25" is 250. The amount must be
// positive and a whole number of millicores.
func ParseCPU(s string) (int64, error) {
	q, err := parseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("invalid CPU amount %q: %w", s, err)
	}
	v, err := cpuMilli(&q)
	if err != nil {
		return 0, fmt.Errorf("invalid CPU amount %q: %w", s, err)
	}
	return v, nil
}

func parseQuantity(s string) (resource.Quantity, error) {
	if len(s) > maxQuantityLen {
		return resource.Quantity{}, fmt.Errorf("longer than %d bytes", maxQuantityLen)
	}
	if err := manifests.CheckQuantity(s); err != nil {
		return resource.Quantity{}, err
	}
	return resource.ParseQuantity(s)
}

func memoryBytes(q *resource.Quantity) (int64, error) {
	if q.Sign() <= 0 {
		return 0, errors.New("must be positive")
	}
	if q.CmpInt64(math.MaxInt64) > 0 {
		return 0, errors.New("too large")
	}
	if _, exact := q.AsScale(0); !exact {
		return 0, errors.New("not a whole number of bytes")
	}
	return q.Value(), nil
}

func cpuMilli(q *resource.Quantity) (int64, error) {
	if q.Sign() <= 0 {
		return 0, errors.New("must be positive")
	}
	if q.CmpInt64(math.MaxInt64/1000) > 0 {
		return 0, errors.New("too large")
	}
	if _, exact := q.AsScale(resource.Milli); !exact {
		return 0, errors.New("finer than 1m")
	}
	return q.MilliValue(), nil
}

// FromIsolators returns the limits set by the appc isolators
// resource/memory (limit), resource/cpu (limit) and os/linux/cpu-shares. Other
// isolators, and requests, are ignored; the caller reports what it ignores. If
// an isolator occurs more than once the most restrictive value wins.
func FromIsolators(isos types.Isolators) (Limits, error) {
	var l Limits
	for i := range isos {
		iso := &isos[i]
		switch v := iso.Value().(type) {
		case *types.ResourceMemory:
			q := v.Limit()
			if q == nil {
				continue
			}
			b, err := memoryBytes(q)
			if err != nil {
				return Limits{}, fmt.Errorf("isolator %s: limit %s: %w", iso.Name, q, err)
			}
			if l.MemoryBytes == nil || b < *l.MemoryBytes {
				l.MemoryBytes = &b
			}
		case *types.ResourceCPU:
			q := v.Limit()
			if q == nil {
				continue
			}
			m, err := cpuMilli(q)
			if err != nil {
				return Limits{}, fmt.Errorf("isolator %s: limit %s: %w", iso.Name, q, err)
			}
			if l.CPUMilli == nil || m < *l.CPUMilli {
				l.CPUMilli = &m
			}
		case *types.LinuxCPUShares:
			if *v < minShares || *v > maxShares {
				return Limits{}, fmt.Errorf("isolator %s: %d is not between %d and %d", iso.Name, *v, minShares, maxShares)
			}
			s := uint64(*v)
			if l.CPUShares == nil || s < *l.CPUShares {
				l.CPUShares = &s
			}
		}
	}
	return l, nil
}

// SharesToWeight converts v1 cpu.shares (2..262144, clamped) to a v2
// cpu.weight (1..10000), with the conversion used by runc, crun and
// Kubernetes: 1 + ((shares-2)*9999)/262142.
func SharesToWeight(shares uint64) uint64 {
	shares = min(max(shares, minShares), maxShares)
	return 1 + ((shares-minShares)*9999)/(maxShares-minShares)
}

// MilliToQuota converts millicores to a CFS quota in microseconds per
// [CFSPeriodUS], rounded up to the kernel's 1ms minimum. A negative value
// means no limit and gives -1.
func MilliToQuota(milli int64) int64 {
	if milli < 0 {
		return -1
	}
	if milli > math.MaxInt64/(CFSPeriodUS/1000) {
		return math.MaxInt64
	}
	return max(milli*(CFSPeriodUS/1000), minCFSQuotaUS)
}
