package stage0

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"

	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage0/images"
	"github.com/rkt-ng/rkt/stage0/store"
)

// Insecure is the set of checks --insecure-options turned off.
type Insecure struct {
	Image, TLS, HTTP, PubKey, Capabilities, Paths, Seccomp bool
}

var insecureNames = []string{"none", "image", "tls", "http", "pubkey", "capabilities", "paths", "seccomp", "ondisk", "all-fetch", "all-run", "all"}

// ParseInsecure parses rkt's --insecure-options value.
func ParseInsecure(s string) (Insecure, error) {
	var in Insecure
	if s == "" {
		return in, nil
	}
	for _, o := range strings.Split(s, ",") {
		switch strings.TrimSpace(o) {
		case "none", "ondisk":
		case "image":
			in.Image = true
		case "tls":
			in.TLS = true
		case "http":
			in.HTTP = true
		case "pubkey":
			in.PubKey = true
		case "capabilities":
			in.Capabilities = true
		case "paths":
			in.Paths = true
		case "seccomp":
			in.Seccomp = true
		case "all-fetch":
			in.Image, in.TLS, in.HTTP, in.PubKey = true, true, true, true
		case "all-run":
			in.Capabilities, in.Paths, in.Seccomp = true, true, true
		case "all":
			in = Insecure{true, true, true, true, true, true, true}
		default:
			return in, fmt.Errorf("unknown insecure option %q (valid: %s)", o, strings.Join(insecureNames, ", "))
		}
	}
	return in, nil
}

// Config is rkt's global configuration: where data and configuration live and
// which checks are off. It is built once by cmd/rkt from the global flags.
type Config struct {
	Dir          string // --dir
	LocalConfig  string // --local-config
	SystemConfig string // --system-config
	UserConfig   string // --user-config
	Insecure     Insecure
	Debug        bool
	Log          *slog.Logger
	// TrustKeysFromHTTPS trusts the keys discovered over https for an
	// image whose signer is not trusted yet (--trust-keys-from-https).
	TrustKeysFromHTTPS bool
	// MaxImageSize bounds the decompressed size of an imported ACI and of
	// each OCI layer (--max-image-size); 0 means store.DefaultMaxImageSize.
	MaxImageSize int64
	// Files is what paths.d and stage1.d of the configuration directories
	// say (ApplyConfigFiles).
	Files ConfigFiles
	// Stderr receives user notices (keys trusted on first use) and, when it
	// is a terminal, download progress; nil means os.Stderr.
	Stderr io.Writer
}

func (c *Config) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// ApplyConfigFiles reads paths.d and stage1.d of the system, local and user
// configuration directories into c.Files. paths.d's data directory replaces
// c.Dir unless dirFromFlag (--dir was given), as in rkt 1.30.
func (c *Config) ApplyConfigFiles(dirFromFlag bool) error {
	f, err := LoadConfigFiles(c.SystemConfig, c.LocalConfig, c.UserConfig)
	if err != nil {
		return err
	}
	c.Files = f
	if !dirFromFlag && f.DataDir != "" {
		c.Dir = f.DataDir
	}
	return nil
}

// Images is the image side of the configuration: fetching, verifying and
// collecting images (package images).
func (c *Config) Images() *images.Config {
	return &images.Config{
		Dir: c.Dir, LocalConfig: c.LocalConfig, SystemConfig: c.SystemConfig,
		Insecure:           images.Insecure{Image: c.Insecure.Image, TLS: c.Insecure.TLS, HTTP: c.Insecure.HTTP},
		TrustKeysFromHTTPS: c.TrustKeysFromHTTPS,
		MaxImageSize:       c.MaxImageSize,
		Log:                c.Log,
		Stderr:             c.Stderr,
	}
}

// fetchImage makes the image of an app available in the store, as the pull
// policy says, and returns its ID; signature is an explicit signature file.
func (c *Config) fetchImage(ctx context.Context, s *store.Store, ref, signature, pullPolicy string) (string, error) {
	return c.Images().Fetch(ctx, s, ref, images.FetchOptions{Signature: signature, PullPolicy: pullPolicy})
}

// Store opens the image store.
func (c *Config) Store() (*store.Store, error) {
	return c.Images().Store()
}

// Pods opens the pod directory.
func (c *Config) Pods() (*pods.Dir, error) {
	return pods.OpenDir(c.Dir)
}

// pod finds a pod by UUID, UUID prefix or name.
func (c *Config) pod(ref string) (*pods.Pod, error) {
	pd, err := c.Pods()
	if err != nil {
		return nil, err
	}
	return pd.Get(ref)
}

// ParseSize reads a size in bytes: a plain number, or one with a binary unit
// K, M, G or T (also written KiB, MiB, GiB, TiB), as --max-image-size takes.
func ParseSize(s string) (int64, error) {
	num, shift := strings.TrimSpace(s), 0
	for i, u := range []string{"T", "G", "M", "K"} {
		if n, ok := strings.CutSuffix(strings.TrimSuffix(num, "iB"), u); ok {
			num, shift = n, 10*(4-i)
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with K, M, G or T", s)
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n << shift, nil
}
