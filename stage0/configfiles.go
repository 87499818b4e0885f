package stage0

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ConfigFiles is what the paths.d and stage1.d configuration kinds of the
// configuration directories say (rkt 1.30's rkt/config: files
// <dir>/paths.d/*.json of rktKind "paths" and <dir>/stage1.d/*.json of
// rktKind "stage1", version v1). Directories are read in the order system,
// local, user; a later directory overrides each value an earlier one set.
// Inside one directory a value may be set only once.
type ConfigFiles struct {
	// DataDir is paths.d's "data": the data directory when --dir is not
	// given.
	DataDir string
	// Stage1ImagesDir is paths.d's "stage1-images": the directory of
	// installed stage1 images (--stage1-from-dir, trusted locations).
	Stage1ImagesDir string
	// Stage1 is stage1.d's default stage1 image: name and version (both or
	// neither) and location (an absolute path or a file, docker, http or
	// https URL).
	Stage1 Stage1Default
}

// Stage1Default is the default stage1 image of a stage1.d file.
type Stage1Default struct {
	Name, Version, Location string
}

// configKindDirs maps each configuration subdirectory read here to the one
// rktKind its files may have.
var configKindDirs = map[string]string{"paths.d": "paths", "stage1.d": "stage1"}

// stage1LocationSchemes are the URL schemes a stage1.d location may have.
var stage1LocationSchemes = []string{"docker", "file", "http", "https"}

// LoadConfigFiles reads paths.d and stage1.d of dirs (empty entries are
// skipped), later directories overriding earlier ones.
func LoadConfigFiles(dirs ...string) (ConfigFiles, error) {
	var out ConfigFiles
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		one, err := loadConfigDir(dir)
		if err != nil {
			return ConfigFiles{}, err
		}
		out.merge(one)
	}
	return out, nil
}

func (c *ConfigFiles) merge(o ConfigFiles) {
	if o.DataDir != "" {
		c.DataDir = o.DataDir
	}
	if o.Stage1ImagesDir != "" {
		c.Stage1ImagesDir = o.Stage1ImagesDir
	}
	if o.Stage1.Name != "" {
		c.Stage1.Name, c.Stage1.Version = o.Stage1.Name, o.Stage1.Version
	}
	if o.Stage1.Location != "" {
		c.Stage1.Location = o.Stage1.Location
	}
}

// loadConfigDir reads one configuration directory. As in rkt 1.30 only
// regular *.json files directly in the kind's subdirectory count;
// subdirectories and symlinks are skipped.
func loadConfigDir(dir string) (ConfigFiles, error) {
	var out ConfigFiles
	for _, sub := range []string{"paths.d", "stage1.d"} {
		d := filepath.Join(dir, sub)
		ents, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("read configuration: %w", err)
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || filepath.Ext(e.Name()) != ".json" {
				continue
			}
			p := filepath.Join(d, e.Name())
			if err := out.parseFile(p, configKindDirs[sub]); err != nil {
				return out, fmt.Errorf("configuration %s: %w", p, err)
			}
		}
	}
	return out, nil
}

func (c *ConfigFiles) parseFile(p, kind string) error {
	b, err := readLimited(p, maxConfigFile)
	if err != nil {
		return err
	}
	var head struct {
		Kind    string `json:"rktKind"`
		Version string `json:"rktVersion"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	if head.Kind != kind {
		return fmt.Errorf("rktKind %q in %s.d, which holds rktKind %q only", head.Kind, kind, kind)
	}
	if head.Version != "v1" {
		return fmt.Errorf("rktKind %q has no rktVersion %q (want v1)", kind, head.Version)
	}
	switch kind {
	case "paths":
		var v struct {
			Data         string `json:"data"`
			Stage1Images string `json:"stage1-images"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		return c.setPaths(v.Data, v.Stage1Images)
	default:
		var v Stage1Default
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		return c.setStage1(v)
	}
}

func (c *ConfigFiles) setPaths(data, stage1Images string) error {
	for _, f := range []struct {
		name, v string
		dst     *string
	}{{"data", data, &c.DataDir}, {"stage1-images", stage1Images, &c.Stage1ImagesDir}} {
		if f.v == "" {
			continue
		}
		if *f.dst != "" {
			return fmt.Errorf("%s: already specified in this directory", f.name)
		}
		if !filepath.IsAbs(f.v) {
			return fmt.Errorf("%s %q: must be an absolute path", f.name, f.v)
		}
		*f.dst = filepath.Clean(f.v)
	}
	return nil
}

func (c *ConfigFiles) setStage1(v Stage1Default) error {
	if (v.Name == "") != (v.Version == "") {
		return errors.New("default stage1 image name and version: give both or neither")
	}
	if v.Location != "" && !filepath.IsAbs(v.Location) {
		u, err := url.Parse(v.Location)
		if err != nil || u.Scheme == "" {
			return fmt.Errorf("default stage1 image location %q: a relative path or a URL without scheme (want an absolute path or a %s URL)", v.Location, strings.Join(stage1LocationSchemes, ", "))
		}
		if !slices.Contains(stage1LocationSchemes, u.Scheme) {
			return fmt.Errorf("default stage1 image location %q: scheme %q not allowed (want %s)", v.Location, u.Scheme, strings.Join(stage1LocationSchemes, ", "))
		}
	}
	if v.Name != "" {
		if c.Stage1.Name != "" {
			return errors.New("name and version of the default stage1 image: already specified in this directory")
		}
		c.Stage1.Name, c.Stage1.Version = v.Name, v.Version
	}
	if v.Location != "" {
		if c.Stage1.Location != "" {
			return errors.New("location of the default stage1 image: already specified in this directory")
		}
		c.Stage1.Location = v.Location
	}
	return nil
}
