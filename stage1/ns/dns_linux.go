package ns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/cni"

	"github.com/rkt-ng/rkt/stage1/podsetup"
)

// podFile is a file stage1 writes and bind-mounts over the same path in
// every app (resolv.conf, hosts).
type podFile struct {
	source string // host path
	target string // path inside each app
}

// hostname is the pod's hostname: --hostname, else rkt-<uuid>.
func (p *pod) hostname() string {
	if p.args.Hostname != "" {
		return p.args.Hostname
	}
	return "rkt-" + p.args.UUID
}

// dnsFiles decides the pod's /etc/hostname, /etc/resolv.conf and /etc/hosts with rkt's
// precedence: --dns flags, then DNS from the CNI result; --hosts-entry lines
// (or the host's file for "host"). Apps keep their image's own files when
// nothing applies.
func (p *pod) dnsFiles(info *cni.Info) ([]podFile, error) {
	var out []podFile
	etc := filepath.Join(p.root(), "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return nil, err
	}
	o := p.opts
	switch {
	case len(o.DNS) == 1 && o.DNS[0] == "host":
		out = append(out, podFile{"/etc/resolv.conf", "/etc/resolv.conf"})
	case len(o.DNS) == 1 && o.DNS[0] == "none":
	case len(o.DNS) > 0 || len(o.DNSSearch) > 0 || len(o.DNSOptions) > 0 || o.DNSDomain != "":
		path := filepath.Join(etc, "rkt-resolv.conf")
		if err := writeResolvConf(path, cni.DNS{Nameservers: o.DNS, Search: o.DNSSearch, Options: o.DNSOptions, Domain: o.DNSDomain}); err != nil {
			return nil, err
		}
		out = append(out, podFile{path, "/etc/resolv.conf"})
	case info != nil && !info.DNS().IsZero():
		path := filepath.Join(etc, "rkt-resolv.conf")
		if err := writeResolvConf(path, info.DNS()); err != nil {
			return nil, err
		}
		out = append(out, podFile{path, "/etc/resolv.conf"})
	}
	// /etc/hostname, as rkt gave every app; it covers the image's own.
	path := filepath.Join(etc, "rkt-hostname")
	if err := os.WriteFile(path, []byte(p.hostname()+"\n"), 0o644); err != nil {
		return nil, err
	}
	out = append(out, podFile{path, "/etc/hostname"})
	if len(o.HostsEntries) > 0 {
		if len(o.HostsEntries) == 1 && o.HostsEntries[0] == "host" {
			out = append(out, podFile{"/etc/hosts", "/etc/hosts"})
		} else {
			hostname := p.hostname()
			var b strings.Builder
			fmt.Fprintf(&b, "127.0.0.1\tlocalhost localhost.localdomain %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", hostname)
			for _, e := range o.HostsEntries {
				fmt.Fprintln(&b, e)
			}
			path := filepath.Join(etc, "rkt-hosts")
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				return nil, err
			}
			out = append(out, podFile{path, "/etc/hosts"})
		}
	}
	return out, nil
}

// filesFor turns pod files into an app's bind mounts. They are mounted after
// the app's volumes, so a generated file also covers a volume mounted on the
// same path: rkt's precedence is --dns* flags > DNS from CNI > a volume on
// /etc/resolv.conf > the image's own file, and --hosts-entry likewise beats
// a volume on /etc/hosts. Without a generated file the volume stays visible.
func filesFor(_ *schema.RuntimeApp, files []podFile) []podsetup.Bind {
	out := make([]podsetup.Bind, 0, len(files))
	for _, f := range files {
		out = append(out, podsetup.Bind{Source: f.source, Target: f.target, ReadOnly: true, File: true})
	}
	return out
}
