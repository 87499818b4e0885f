package images

import (
	"io"
	"log/slog"
	"path/filepath"

	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/signing"
	"github.com/rkt-ng/rkt/stage0/store"
)

// Insecure is the set of fetch checks --insecure-options turned off.
type Insecure struct {
	// Image skips signature checks.
	Image bool
	// TLS accepts any server certificate.
	TLS bool
	// HTTP allows plain http for discovery, images, keys and registries.
	HTTP bool
}

// Config says where the image store and the trust store are and which
// checks are off. stage0.Config.Images builds it from rkt's global flags.
type Config struct {
	// Dir is the data directory (--dir): the store is Dir/cas, and the pods
	// whose images gc keeps are under Dir/pods.
	Dir string
	// LocalConfig and SystemConfig hold the trust store (trustedkeys/) and
	// extra https CAs (ca.d/*.pem); the local one overrides the system one.
	LocalConfig, SystemConfig string
	Insecure                  Insecure
	// TrustKeysFromHTTPS trusts the keys discovered over https for an
	// image whose signer is not trusted yet (--trust-keys-from-https).
	TrustKeysFromHTTPS bool
	// MaxImageSize bounds the decompressed size of an imported ACI and of
	// each OCI layer (--max-image-size); 0 means store.DefaultMaxImageSize.
	MaxImageSize int64
	// Log receives diagnostics; nil discards them.
	Log *slog.Logger
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

// Store opens the image store.
func (c *Config) Store() (*store.Store, error) {
	return store.Open(filepath.Join(c.Dir, "cas"), store.WithMaxImageSize(c.MaxImageSize))
}

// Keystore is the trust store of the configured dirs: `rkt trust` writes to
// the local config, which overrides the system config.
func (c *Config) Keystore() *signing.Keystore {
	return &signing.Keystore{LocalDir: c.LocalConfig, SystemDir: c.SystemConfig}
}

// pods opens the pod directory, to see which images and trees pods use.
func (c *Config) pods() (*pods.Dir, error) {
	return pods.OpenDir(c.Dir)
}
