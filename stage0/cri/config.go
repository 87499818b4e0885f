package cri

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// DefaultConfigPath is where rkt-cri reads its configuration file; an
// absent file means the defaults.
const DefaultConfigPath = "/etc/rkt-ng/cri.json"

// DefaultSocket is the unix socket rkt-cri listens on.
const DefaultSocket = "/run/rkt-ng/cri.sock"

// Config is rkt-cri's configuration file (JSON).
type Config struct {
	// Network is the --net of the sandboxes that do not use the host's
	// network: "default", or net.d network names.
	Network string `json:"network"`
	// CNIConfDir is the directory of CNI network configurations; it must
	// be named net.d, and its parent becomes rkt's --local-config. Empty
	// means rkt's own (/etc/rkt/net.d).
	CNIConfDir string `json:"cniConfDir"`
	// RegistryMirrors maps a registry host to mirror URLs tried in order
	// before the registry itself; an http:// URL is a plain-HTTP registry.
	RegistryMirrors map[string][]string `json:"registryMirrors"`
	// PodAnnotationsPassThrough copies the sandbox's CRI annotations to
	// the pod's user annotations.
	PodAnnotationsPassThrough bool `json:"podAnnotationsPassThrough"`
}

// LocalConfig is rkt's --local-config for this configuration: the parent
// of CNIConfDir, or rkt's default.
func (c Config) LocalConfig() string {
	if c.CNIConfDir != "" {
		return filepath.Dir(c.CNIConfDir)
	}
	return "/etc/rkt"
}

// DefaultConfig is the configuration used without a file.
func DefaultConfig() Config {
	return Config{Network: "default"}
}

// LoadConfig reads a configuration file. An absent file gives
// DefaultConfig; an unknown field or a malformed mirror is an error.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

func (c *Config) check() error {
	if c.Network == "" {
		c.Network = "default"
	}
	if c.Network == "host" || c.Network == "none" {
		return fmt.Errorf("network %q: name a CNI network (the host network is asked per pod)", c.Network)
	}
	if c.CNIConfDir != "" && (!filepath.IsAbs(c.CNIConfDir) || filepath.Base(c.CNIConfDir) != "net.d") {
		return fmt.Errorf("cniConfDir %q: want an absolute path ending in net.d (rkt reads <local-config>/net.d)", c.CNIConfDir)
	}
	for reg, ms := range c.RegistryMirrors {
		if reg == "" {
			return errors.New("registryMirrors: empty registry name")
		}
		for _, m := range ms {
			u, err := url.Parse(m)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("registryMirrors[%s]: mirror %q: want http://HOST[:PORT] or https://HOST[:PORT]", reg, m)
			}
		}
	}
	return nil
}
