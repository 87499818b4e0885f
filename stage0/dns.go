package stage0

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/rkt-ng/rkt/stage1"
)

// DNSFlags are rkt's --dns, --dns-search, --dns-opt, --dns-domain and
// --hosts-entry, as given on the command line.
type DNSFlags struct {
	DNS, Search, Options []string
	Domain               string
	HostsEntries         []string
}

// given reports whether any of the flags was given.
func (f DNSFlags) given() bool {
	return len(f.DNS) > 0 || len(f.Search) > 0 || len(f.Options) > 0 || f.Domain != "" || len(f.HostsEntries) > 0
}

// apply checks f with rkt 1.30's rules (rkt/run.go parseDNSFlags) and
// writes it to o. --dns takes IP addresses or one of the magic values "host"
// (the host's resolv.conf) and "none" (ignore the networks' DNS, keep the
// image's file), which exclude every other --dns* flag. --hosts-entry takes
// comma-separated IP=NAME pairs (names of one IP share its line, in the
// order given) or "host" (the host's /etc/hosts), which excludes pairs.
func (f DNSFlags) apply(o *stage1.Options) error {
	var servers []string
	for _, d := range f.DNS {
		if d == "host" || d == "none" {
			if len(f.DNS) > 1 {
				return fmt.Errorf("no other --dns options allowed when --dns=%s is passed", d)
			}
			if len(f.Search) > 0 || len(f.Options) > 0 || f.Domain != "" {
				return fmt.Errorf("cannot call --dns-opt, --dns-search, or --dns-domain with --dns=%s", d)
			}
			servers = []string{d}
			break
		}
		for d := range strings.SplitSeq(d, ",") {
			if _, err := netip.ParseAddr(d); err != nil {
				return fmt.Errorf("invalid IP passed to --dns: %q", d)
			}
			servers = append(servers, d)
		}
	}
	hosts, err := hostsEntries(f.HostsEntries)
	if err != nil {
		return err
	}
	o.DNS, o.DNSSearch, o.DNSOptions, o.DNSDomain = servers, f.Search, f.Options, f.Domain
	o.HostsEntries = hosts
	return nil
}

// hostsEntries turns --hosts-entry values into /etc/hosts lines ("IP NAME
// NAME..."), or ["host"].
func hostsEntries(in []string) ([]string, error) {
	host := false
	var ips []string
	names := map[string][]string{}
	for _, e := range in {
		if e == "host" {
			host = true
			continue
		}
		for pair := range strings.SplitSeq(e, ",") {
			ip, name, ok := strings.Cut(pair, "=")
			if !ok {
				return nil, fmt.Errorf("did not understand --hosts-entry %q: want IP=NAME or host", pair)
			}
			addr, err := netip.ParseAddr(ip)
			if err != nil {
				return nil, fmt.Errorf("invalid IP passed to --hosts-entry: %q", ip)
			}
			if name == "" || strings.ContainsAny(name, " \t\n\r#") {
				return nil, fmt.Errorf("invalid host name passed to --hosts-entry: %q", name)
			}
			key := addr.String()
			if _, seen := names[key]; !seen {
				ips = append(ips, key)
			}
			if !slices.Contains(names[key], name) {
				names[key] = append(names[key], name)
			}
		}
	}
	if host {
		if len(ips) > 0 {
			return nil, fmt.Errorf("cannot pass --hosts-entry=host with other --hosts-entry values")
		}
		return []string{"host"}, nil
	}
	var out []string
	for _, ip := range ips {
		out = append(out, ip+" "+strings.Join(names[ip], " "))
	}
	return out, nil
}
