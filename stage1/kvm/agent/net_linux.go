package agent

import (
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// configureNetwork gives each guest interface, found by its MAC, the
// addresses and routes the host sent: those of the pod's interface that
// the guest's replaces. Link-scope routes go first, so that the gateways
// of the others are reachable.
func configureNetwork(ifaces []channel.Interface) error {
	if len(ifaces) == 0 {
		return nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, ifc := range ifaces {
		var link netlink.Link
		for _, l := range links {
			if strings.EqualFold(l.Attrs().HardwareAddr.String(), ifc.MAC) {
				link = l
			}
		}
		if link == nil {
			return fmt.Errorf("no network interface with MAC %s", ifc.MAC)
		}
		name := link.Attrs().Name
		if ifc.MTU > 0 {
			if err := netlink.LinkSetMTU(link, ifc.MTU); err != nil {
				return fmt.Errorf("%s: mtu %d: %w", name, ifc.MTU, err)
			}
		}
		for _, a := range ifc.Addrs {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return fmt.Errorf("%s: address %q: %w", name, a, err)
			}
			// No duplicate address detection: the address is the pod's.
			addr.Flags = unix.IFA_F_NODAD
			if err := netlink.AddrAdd(link, addr); err != nil {
				return fmt.Errorf("%s: add address %s: %w", name, a, err)
			}
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("%s: up: %w", name, err)
		}
		for _, pass := range []bool{false, true} {
			for _, r := range ifc.Routes {
				if (r.Gw != "") != pass {
					continue
				}
				if err := addRoute(link, r); err != nil {
					return fmt.Errorf("%s: route %s via %q: %w", name, r.Dst, r.Gw, err)
				}
			}
		}
	}
	return nil
}

func addRoute(link netlink.Link, r channel.Route) error {
	nr := &netlink.Route{LinkIndex: link.Attrs().Index}
	if r.Gw != "" {
		nr.Gw = net.ParseIP(r.Gw)
		if nr.Gw == nil {
			return fmt.Errorf("bad gateway")
		}
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.Dst != "" {
		_, dst, err := net.ParseCIDR(r.Dst)
		if err != nil {
			return err
		}
		nr.Dst = dst
	} else if nr.Gw.To4() == nil {
		nr.Family = unix.AF_INET6
	} else {
		nr.Family = unix.AF_INET
	}
	return netlink.RouteReplace(nr)
}
