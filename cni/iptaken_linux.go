package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/rkt-ng/rkt/internal/untrusted"
)

// IPTakenError is a failed ADD of a network whose IP argument (rkt's
// `--net=NAME:IP=ADDR`, CNI_ARGS) asked for an address that a host-local
// lease already holds. The plugin's own words ("requested IP address ... is
// not available in range set ...") do not say that another pod has it.
type IPTakenError struct {
	Network string
	IP      netip.Addr
	// Pod is the UUID of the pod holding the lease, when the lease names one.
	Pod string
	// Err is the plugin's error.
	Err error
}

func (e *IPTakenError) Error() string {
	who := "another pod"
	if e.Pod != "" {
		who = "pod " + e.Pod
	}
	return fmt.Sprintf("network %q: IP %s (asked for with --net=%s:IP=%s) is already taken by %s", e.Network, e.IP, e.Network, e.IP, who)
}

func (e *IPTakenError) Unwrap() error { return e.Err }

// maxLease bounds what is read of a lease file: a container ID and an
// interface name.
const maxLease = 512

// ipTaken returns an *IPTakenError when one of the addresses of args' IP key
// has a lease of a host-local IPAM of conf (the effective configuration,
// whose host-local plugins all have a dataDir), or nil.
func ipTaken(name string, conf []byte, args [][2]string, cause error) error {
	var ips []netip.Addr
	for _, kv := range args {
		if kv[0] != "IP" {
			continue
		}
		for s := range strings.SplitSeq(kv[1], ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
				ips = append(ips, a)
			}
		}
	}
	if len(ips) == 0 {
		return nil
	}
	var raw struct {
		Name    string `json:"name"`
		Plugins []struct {
			IPAM struct {
				Type    string `json:"type"`
				DataDir string `json:"dataDir"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if json.Unmarshal(conf, &raw) != nil || raw.Name == "" || strings.ContainsAny(raw.Name, "/\x00") || raw.Name == ".." {
		return nil
	}
	for _, p := range raw.Plugins {
		if p.IPAM.Type != "host-local" || p.IPAM.DataDir == "" {
			continue
		}
		for _, ip := range ips {
			// host-local's disk store: <dataDir>/<network>/<ip>, holding
			// the container ID, then the interface name.
			owner, ok := leaseOwner(filepath.Join(p.IPAM.DataDir, raw.Name, ip.String()))
			if ok {
				return &IPTakenError{Network: name, IP: ip, Pod: owner, Err: cause}
			}
		}
	}
	return nil
}

// leaseOwner reads a host-local lease: ok when it exists, with the container
// ID when that is a pod UUID.
func leaseOwner(path string) (string, bool) {
	b, err := untrusted.ReadFile(path, maxLease)
	if err != nil {
		return "", false
	}
	id, _, _ := strings.Cut(strings.ReplaceAll(string(b), "\r", ""), "\n")
	if !isUUID(id) {
		return "", true
	}
	return id, true
}

// isUUID accepts the canonical 36-character form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}
