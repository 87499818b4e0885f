package cri

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rkt-ng/rkt/internal/untrusted"
)

// builtinNetworks are the networks rkt has without configuration.
var builtinNetworks = map[string]bool{"default": true, "default-restricted": true}

// maxNetConfBytes bounds a CNI configuration file read.
const maxNetConfBytes = 1 << 20

// missingNetworks returns the networks of a --net value that no
// configuration file of the net.d directories defines (rkt fails the
// sandboxes that name one).
func missingNetworks(netArg string, netDirs ...string) []string {
	defined := map[string]bool{}
	for _, dir := range netDirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || (ext != ".conf" && ext != ".conflist") {
				continue
			}
			b, err := untrusted.ReadFile(filepath.Join(dir, e.Name()), maxNetConfBytes)
			if err != nil {
				continue
			}
			var c struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(b, &c) == nil && c.Name != "" {
				defined[c.Name] = true
			}
		}
	}
	var missing []string
	for _, n := range strings.Split(netArg, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(n), ":")
		if name == "" || name == "all" || builtinNetworks[name] || defined[name] {
			continue
		}
		missing = append(missing, name)
	}
	return missing
}

// networkCondition is Status's NetworkReady: false while the configured
// network is not defined.
func (s *Server) networkCondition() (ok bool, reason, message string) {
	dirs := []string{filepath.Join(s.cfg.LocalConfig(), "net.d")}
	if s.stage0.SystemConfig != "" {
		dirs = append(dirs, filepath.Join(s.stage0.SystemConfig, "net.d"))
	}
	if m := missingNetworks(s.cfg.Network, dirs...); len(m) > 0 {
		return false, "NetworkConfigMissing", fmt.Sprintf("network %s is not defined in %s", strings.Join(m, ", "), strings.Join(dirs, " or "))
	}
	return true, "", ""
}
