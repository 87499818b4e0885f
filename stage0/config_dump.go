package stage0

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rkt-ng/rkt/manifests"
)

// ConfigEntry is one entry of `rkt config`: rkt's configuration file format
// (rktVersion, rktKind) with the values in effect. Credentials are never
// included: an auth entry names its domains and type only.
type ConfigEntry map[string]any

// ConfigDump is the output of `rkt config`, as rkt's: {"stage0": [...]}.
type ConfigDump struct {
	Stage0 []ConfigEntry `json:"stage0"`
}

// maxConfigFile bounds one auth.d file read for `rkt config`.
const maxConfigFile = 1 << 20

// DumpConfig returns the merged stage0 configuration: the paths in use, the
// default stage1 image, the trust store directories and the domains and
// registries that have credentials (system config, overridden per domain by
// the local config, as fetching applies them).
func (c *Config) DumpConfig() (ConfigDump, error) {
	d := ConfigDump{Stage0: []ConfigEntry{{
		"rktVersion":    "v1",
		"rktKind":       "paths",
		"data":          c.Dir,
		"stage1-images": c.stage1Dir(),
		"local-config":  c.LocalConfig,
		"system-config": c.SystemConfig,
		"user-config":   c.UserConfig,
	}}}
	s1 := ConfigEntry{"rktVersion": "v1", "rktKind": "stage1"}
	if def := c.Files.Stage1; def.Name != "" || def.Location != "" {
		// stage1.d's default image, as rkt 1.30 printed it.
		s1["name"], s1["version"], s1["location"] = def.Name, def.Version, def.Location
		d.Stage0 = append(d.Stage0, s1)
		return c.dumpRest(d)
	}
	for _, p := range c.stage1Candidates(DefaultStage1Image) {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return d, err
		}
		s1["location"] = abs
		if f, err := os.Open(abs); err == nil {
			im, err := manifests.ReadACIManifest(f)
			f.Close()
			if err == nil {
				s1["name"] = im.Name.String()
				if v, ok := im.Labels.Get("version"); ok {
					s1["version"] = v
				}
			}
		}
		break
	}
	d.Stage0 = append(d.Stage0, s1)
	return c.dumpRest(d)
}

// dumpRest adds the trust and auth entries to d.
func (c *Config) dumpRest(d ConfigDump) (ConfigDump, error) {
	var trust []string
	for _, dir := range []string{c.SystemConfig, c.LocalConfig} {
		if dir != "" {
			trust = append(trust, filepath.Join(dir, "trustedkeys"))
		}
	}
	d.Stage0 = append(d.Stage0, ConfigEntry{"rktVersion": "v1", "rktKind": "trust", "directories": trust})
	auth, err := c.authEntries()
	if err != nil {
		return d, err
	}
	return ConfigDump{Stage0: append(d.Stage0, auth...)}, nil
}

// authFileHead is the part of an auth.d file `rkt config` shows; the
// credentials field is deliberately not decoded.
type authFileHead struct {
	Kind       string   `json:"rktKind"`
	Version    string   `json:"rktVersion"`
	Domains    []string `json:"domains"`
	Registries []string `json:"registries"`
	Type       string   `json:"type"`
}

// authEntries reads auth.d of the system then the local config; a domain or
// registry of the local config hides the system's entry for it.
func (c *Config) authEntries() ([]ConfigEntry, error) {
	type owner struct{ kind, typ, file string }
	domains := map[string]owner{}
	registries := map[string]owner{}
	for _, dir := range []string{c.SystemConfig, c.LocalConfig} {
		if dir == "" {
			continue
		}
		authDir := filepath.Join(dir, "auth.d")
		ents, err := os.ReadDir(authDir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read auth config: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			p := filepath.Join(authDir, e.Name())
			b, err := readLimited(p, maxConfigFile)
			if err != nil {
				return nil, fmt.Errorf("read auth config: %w", err)
			}
			var h authFileHead
			if err := json.Unmarshal(b, &h); err != nil {
				return nil, fmt.Errorf("auth config %s: %w", p, err)
			}
			switch h.Kind {
			case "auth":
				for _, dom := range h.Domains {
					domains[dom] = owner{h.Kind, h.Type, p}
				}
			case "dockerAuth":
				for _, r := range h.Registries {
					registries[r] = owner{h.Kind, "", p}
				}
			default:
				return nil, fmt.Errorf("auth config %s: unsupported rktKind %q (want auth or dockerAuth)", p, h.Kind)
			}
		}
	}
	// One entry per (file, type), as the files group them.
	type group struct{ kind, typ, file string }
	byGroup := map[group][]string{}
	for dom, o := range domains {
		byGroup[group(o)] = append(byGroup[group(o)], dom)
	}
	for r, o := range registries {
		byGroup[group(o)] = append(byGroup[group(o)], r)
	}
	keys := make([]group, 0, len(byGroup))
	for g := range byGroup {
		keys = append(keys, g)
	}
	slices.SortFunc(keys, func(a, b group) int {
		return strings.Compare(a.file+"\x00"+a.kind+"\x00"+a.typ, b.file+"\x00"+b.kind+"\x00"+b.typ)
	})
	var out []ConfigEntry
	for _, g := range keys {
		names := byGroup[g]
		slices.Sort(names)
		e := ConfigEntry{"rktVersion": "v1", "rktKind": g.kind, "file": g.file}
		if g.kind == "auth" {
			e["domains"], e["type"] = names, g.typ
		} else {
			e["registries"] = names
		}
		out = append(out, e)
	}
	return out, nil
}

func readLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, limit)
	}
	return b, nil
}
