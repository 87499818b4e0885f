package main

import (
	"fmt"
	"path/filepath"
)

// benchNet: warm `rkt run` of /bin/true with --net=host, none and default,
// next to the floor of what a pod network minimally costs: a named netns
// and a veth pair with one end in it, addressed and up, then deleted, with
// iproute2 in the same run.
func benchNet(b *bench) error {
	rootfs := filepath.Join(b.work, "net-true-rootfs")
	if err := busyboxRootfs(rootfs); err != nil {
		return err
	}
	aci := filepath.Join(b.work, "net-true.aci")
	if err := writeACI(aci, "bench.rkt-ng.io/net-true", []string{"/bin/true"}, rootfs, false); err != nil {
		return err
	}
	id, err := b.rktOut("--insecure-options=image", "fetch", aci)
	if err != nil {
		return err
	}
	floor := "netns + veth floor (ip netns add, veth, addr, up, del)"
	d, err := timeCmd(*runs, func(i int) []string {
		ns := fmt.Sprintf("rktbench%d", i+1)
		return []string{"sh", "-ec", fmt.Sprintf(`ip netns add %[1]s
ip link add %[1]sh type veth peer name eth0 netns %[1]s
ip addr add 10.231.250.1/32 dev %[1]sh
ip link set %[1]sh up
ip -n %[1]s addr add 10.231.250.2/24 dev eth0
ip -n %[1]s link set eth0 up
ip netns del %[1]s`, ns)}
	})
	if err != nil {
		return err
	}
	record("net", floor, floor, d, "")
	host := "rkt run --net=host (warm)"
	dHost, err := timeCmd(*runs, func(int) []string { return b.rkt("run", "--net=host", id) })
	if err != nil {
		return err
	}
	record("net", host, floor, dHost, "")
	dNone, err := timeCmd(*runs, func(int) []string { return b.rkt("run", "--net=none", id) })
	if err != nil {
		return err
	}
	record("net", "rkt run --net=none (warm)", floor, dNone, "")
	dDef, err := timeCmd(*runs, func(int) []string { return b.rkt("run", "--net=default", id) })
	if err != nil {
		return err
	}
	record("net", "rkt run --net=default (warm)", floor, dDef, "")
	record("net", "--net=default minus --net=host", floor, dDef-dHost, "< 3x floor")
	_, err = b.rktOut("gc", "--grace-period=0s")
	return err
}
