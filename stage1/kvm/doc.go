// Package kvm is the KVM stage1: every pod runs in its own virtual machine,
// booted by qemu (KVM where /dev/kvm works, TCG emulation otherwise) from
// the kernel and initramfs of the stage1 image. docs/kvm.md has the design.
//
// The host side here implements the stage1 entrypoints (run, gc, stop,
// enter) with the same pod directory (pods/layout) and stage1 contract
// (package stage1) as the namespace flavor. The run entrypoint shares the
// pod's stage1 rootfs (which holds every app's rootfs) and its volumes with
// the guest over virtio-9p, and talks to the agent in the guest
// (stage1/kvm/agent) over a virtio-serial port (stage1/kvm/channel). The
// guest runs the pod with the namespace stage1 itself, so the apps get the
// same stage2 confinement; their exit statuses and logs land in the stage1
// rootfs where rkt status and rkt logs read them.
//
// qemu runs in the pod's cgroup on the host and dies with the run
// entrypoint (PR_SET_PDEATHSIG). Everything the guest writes into shared
// directories is hostile to the host, as for the namespace flavor
// (docs/security.md): the host reads back only the exit code from the
// channel and relays output bytes.
//
// The package is Linux-only.
package kvm
