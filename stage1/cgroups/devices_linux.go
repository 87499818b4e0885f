package cgroups

import (
	"errors"
)

// ErrNoDevicePolicy means the kernel refused the device policy (cgroup v2
// without eBPF device programs).
var ErrNoDevicePolicy = errors.New("no device policy on this cgroup layout")

// allowedDevices are the nodes appc requires in /dev: /dev/null, zero,
// full, random, urandom, tty, console, ptmx and the pod's own ptys. An app
// may read, write and create them ("m": mknod, with CAP_MKNOD, as rkt and
// runc allow); every other device is denied, creation included.
var allowedDevices = []string{
	"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
	"c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",
}

// RestrictDevices applies a closed device policy to the pod on cgroup v1:
// every device is denied, then the standard nodes are allowed (mknod too).
// v1 refuses a blanket deny on a cgroup that has children, so the policy goes
// on the leaves: the init leaf now and every app made afterwards by NewApp.
// On v2 it attaches an eBPF device program (BPF_CGROUP_DEVICE) to the pod
// cgroup instead, and returns an error wrapping ErrNoDevicePolicy if the
// kernel refuses it.
func (p *Pod) RestrictDevices() error {
	return p.version().restrictDevices()
}
