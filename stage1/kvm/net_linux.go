package kvm

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/cni"
	"github.com/rkt-ng/rkt/internal/netns"
	"github.com/rkt-ng/rkt/stage1/kvm/channel"
	"github.com/rkt-ng/rkt/stage1/podnet"
)

// nic is one guest network interface and its backend on the host.
type nic struct {
	// tap is the tap device's fd, for qemu; nil for user-mode networking.
	tap   *os.File
	iface channel.Interface
}

// User-mode networking (--net=host): qemu's built-in NAT (slirp) with its
// fixed addresses.
const (
	userMAC  = "52:54:00:12:34:56"
	userAddr = "10.0.2.15/24"
	userGw   = "10.0.2.2"
	userDNS  = "10.0.2.3"
)

// setupNetwork attaches the pod's networks on the host, as the namespace
// flavor does (stage1/podnet), and makes one guest interface per network:
// a tap device in the pod's netns, with the MAC, addresses and routes the
// network gave the pod's interface, and the interface's traffic redirected
// to the tap both ways (tc mirred). The network namespace is the pod's on
// the host; the guest is the pod. --net=host gives the guest user-mode
// networking (outbound only, through qemu) and --net=none only loopback.
func (p *pod) setupNetwork(ctx context.Context) ([]nic, *cni.Info, error) {
	switch p.args.Net {
	case "none":
		return nil, nil, nil
	case "host":
		return []nic{{iface: channel.Interface{MAC: userMAC, Addrs: []string{userAddr}, Routes: []channel.Route{{Gw: userGw}}}}}, nil, nil
	}
	nsPath, info, err := podnet.Setup(ctx, podnet.Config{
		PodDir: p.dir, UUID: p.args.UUID, Manifest: p.manifest, Net: p.args.Net,
		LocalConfig: p.args.LocalConfig, SystemConfig: p.opts.SystemConfig, DataDir: p.opts.DataDir, Log: p.log,
	})
	if err != nil || info == nil {
		return nil, info, err
	}
	var nics []nic
	err = netns.Do(nsPath, func() error {
		for i, n := range info.Networks {
			c, err := tapFor(n.IfName, fmt.Sprintf("tap%d", i))
			if err != nil {
				return fmt.Errorf("network %s: %w", n.NetName, err)
			}
			nics = append(nics, c)
		}
		return nil
	})
	if err != nil {
		for _, n := range nics {
			n.tap.Close()
		}
		return nil, nil, err
	}
	return nics, info, nil
}

// tapFor makes a tap device named tapName beside the pod's interface
// ifName, in the calling thread's netns, and redirects each one's ingress
// to the other's egress. It returns the tap's fd and the interface's
// configuration for the guest.
func tapFor(ifName, tapName string) (nic, error) {
	link, err := netlink.LinkByName(ifName)
	if err != nil {
		return nic{}, fmt.Errorf("interface %s: %w", ifName, err)
	}
	iface := channel.Interface{MAC: link.Attrs().HardwareAddr.String(), MTU: link.Attrs().MTU}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nic{}, fmt.Errorf("interface %s: addresses: %w", ifName, err)
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		iface.Addrs = append(iface.Addrs, a.IPNet.String())
	}
	routes, err := netlink.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nic{}, fmt.Errorf("interface %s: routes: %w", ifName, err)
	}
	for _, r := range routes {
		// The guest makes the prefix routes of its addresses itself.
		if r.Protocol == unix.RTPROT_KERNEL || (r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast()) || r.Table != unix.RT_TABLE_MAIN {
			continue
		}
		var cr channel.Route
		if r.Dst != nil && !isDefault(r.Dst) {
			cr.Dst = r.Dst.String()
		}
		if r.Gw != nil {
			cr.Gw = r.Gw.String()
		}
		if cr.Dst == "" && cr.Gw == "" {
			continue
		}
		iface.Routes = append(iface.Routes, cr)
	}
	tap, err := openTap(tapName)
	if err != nil {
		return nic{}, err
	}
	tapLink, err := netlink.LinkByName(tapName)
	if err == nil {
		err = netlink.LinkSetMTU(tapLink, link.Attrs().MTU)
	}
	if err == nil {
		err = netlink.LinkSetUp(tapLink)
	}
	if err == nil {
		err = redirect(link.Attrs().Index, tapLink.Attrs().Index)
	}
	if err == nil {
		err = redirect(tapLink.Attrs().Index, link.Attrs().Index)
	}
	if err != nil {
		tap.Close()
		return nic{}, fmt.Errorf("tap %s for %s: %w", tapName, ifName, err)
	}
	return nic{tap: tap, iface: iface}, nil
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0 && n.IP.IsUnspecified()
}

// openTap creates the tap device name (with virtio-net headers, as qemu
// prefers) and returns its queue's fd.
func openTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/dev/net/tun", Err: err}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", name, os.NewSyscallError("TUNSETIFF", err))
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

// redirect sends every frame arriving on link from to the egress of link
// to: an ingress qdisc with a match-all u32 filter and a mirred action.
func redirect(from, to int) error {
	q := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: from, Parent: netlink.HANDLE_INGRESS, Handle: netlink.MakeHandle(0xffff, 0)}}
	if err := netlink.QdiscAdd(q); err != nil {
		return fmt.Errorf("ingress qdisc: %w", err)
	}
	f := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: from, Parent: netlink.MakeHandle(0xffff, 0), Priority: 1, Protocol: unix.ETH_P_ALL},
		Actions:     []netlink.Action{netlink.NewMirredAction(to)},
	}
	if err := netlink.FilterAdd(f); err != nil {
		return fmt.Errorf("mirred filter: %w", err)
	}
	return nil
}

// guestOptions returns stage1-options.json for the guest: the host's,
// with the DNS configuration of the pod's networks (or of user-mode
// networking) when the user gave none, as the namespace flavor's plan
// does with CNI's DNS.
func (p *pod) guestOptions(info *cni.Info) ([]byte, error) {
	o := p.opts
	if len(o.DNS) == 0 && len(o.DNSSearch) == 0 && len(o.DNSOptions) == 0 && o.DNSDomain == "" {
		switch {
		case info != nil:
			d := info.DNS()
			o.DNS, o.DNSSearch, o.DNSOptions, o.DNSDomain = d.Nameservers, d.Search, d.Options, d.Domain
		case p.args.Net == "host":
			o.DNS = []string{userDNS}
		}
	}
	// Host paths mean nothing in the guest.
	o.DataDir, o.SystemConfig = "", ""
	return json.Marshal(o)
}

// netDevices returns qemu's arguments for the guest's interfaces; the tap
// fds are ExtraFiles from firstFD on.
func netDevices(nics []nic, firstFD int) (args []string, files []*os.File) {
	for i, n := range nics {
		backend := fmt.Sprintf("user,id=net%d", i)
		if n.tap != nil {
			backend = fmt.Sprintf("tap,id=net%d,fd=%d,vhost=off", i, firstFD+len(files))
			files = append(files, n.tap)
		}
		args = append(args, "-netdev", backend, "-device", fmt.Sprintf("virtio-net-pci,netdev=net%d,mac=%s,romfile=", i, n.iface.MAC))
	}
	return args, files
}
