package main

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// printIfaces prints "IFACE=<name> mtu=<n> flags=<flags>" for every link and
// "ADDR=<name> <cidr>" for every address on it.
func printIfaces() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		fmt.Printf("IFACE=%s mtu=%d flags=%s\n", ifc.Name, ifc.MTU, ifc.Flags)
		addrs, err := ifc.Addrs()
		if err != nil {
			return fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			fmt.Printf("ADDR=%s %s\n", ifc.Name, a)
		}
	}
	return nil
}

// rtfUp and rtfGateway are RTF_UP and RTF_GATEWAY of <linux/route.h>.
const (
	rtfUp      = 0x1
	rtfGateway = 0x2
)

// printRoutes prints "ROUTE=<dst> [via <gw>] dev <iface> metric <n>" for every
// usable route of /proc/net/route and /proc/net/ipv6_route.
func printRoutes() error {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return err
	}
	routes, err := parseRoutes4(string(b))
	if err != nil {
		return err
	}
	// ipv6_route is absent when IPv6 is disabled.
	if b, err := os.ReadFile("/proc/net/ipv6_route"); err == nil {
		r6, err := parseRoutes6(string(b))
		if err != nil {
			return err
		}
		routes = append(routes, r6...)
	}
	for _, r := range routes {
		fmt.Printf("ROUTE=%s\n", r)
	}
	return nil
}

// parseRoutes4 reads /proc/net/route, whose addresses are the kernel's
// big-endian words printed as host-order hex.
func parseRoutes4(data string) ([]string, error) {
	var out []string
	lines := strings.Split(strings.TrimSpace(data), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("/proc/net/route: malformed line %q", line)
		}
		dst, err1 := hexIPv4(f[1])
		gw, err2 := hexIPv4(f[2])
		mask, err3 := hexIPv4(f[7])
		flags, err4 := strconv.ParseUint(f[3], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return nil, fmt.Errorf("/proc/net/route: malformed line %q", line)
		}
		if flags&rtfUp == 0 {
			continue
		}
		ones, _ := net.IPMask(mask).Size()
		r := fmt.Sprintf("%s/%d", dst, ones)
		if ones == 0 {
			r = "default"
		}
		if flags&rtfGateway != 0 {
			r += " via " + gw.String()
		}
		out = append(out, fmt.Sprintf("%s dev %s metric %s", r, f[0], f[6]))
	}
	return out, nil
}

func hexIPv4(s string) (net.IP, error) {
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return nil, err
	}
	ip := make(net.IP, 4)
	binary.NativeEndian.PutUint32(ip, uint32(n))
	return ip, nil
}

// parseRoutes6 reads /proc/net/ipv6_route: dst, dst prefix length, src, src
// prefix length, next hop, metric, refcount, use, flags, device.
func parseRoutes6(data string) ([]string, error) {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 10 {
			return nil, fmt.Errorf("/proc/net/ipv6_route: malformed line %q", line)
		}
		dst, err1 := hex.DecodeString(f[0])
		plen, err2 := strconv.ParseUint(f[1], 16, 8)
		gw, err3 := hex.DecodeString(f[4])
		metric, err4 := strconv.ParseUint(f[5], 16, 32)
		flags, err5 := strconv.ParseUint(f[8], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil || len(dst) != 16 || len(gw) != 16 {
			return nil, fmt.Errorf("/proc/net/ipv6_route: malformed line %q", line)
		}
		if flags&rtfUp == 0 {
			continue
		}
		r := fmt.Sprintf("%s/%d", net.IP(dst), plen)
		if plen == 0 {
			r = "default6"
		}
		if flags&rtfGateway != 0 {
			r += " via " + net.IP(gw).String()
		}
		out = append(out, fmt.Sprintf("%s dev %s metric %d", r, f[9], metric))
	}
	return out, nil
}
