package images

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/signing"
)

// Build writes an ACI from dir (holding `manifest` and `rootfs/`) to
// out. The manifest is validated with the appc library first; with modTime
// set the output is reproducible. out is replaced atomically, so a failure
// leaves no partial file.
func Build(dir, out string, modTime *time.Time, overwrite bool) error {
	b, err := os.ReadFile(filepath.Join(dir, "manifest"))
	if err != nil {
		return fmt.Errorf("build %s: %w", dir, err)
	}
	im, err := manifests.DecodeImage(b)
	if err != nil {
		return fmt.Errorf("build %s: %w", dir, err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return fmt.Errorf("build %s: no rootfs directory", dir)
	}
	if _, err := os.Stat(out); err == nil && !overwrite {
		return fmt.Errorf("build: %s exists (use --overwrite)", out)
	}
	return atomicfile.Write(out, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := manifests.WriteACI(bw, im, rootfs, manifests.BuildOptions{ModTime: modTime}); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// Sign writes IMAGE.asc, an armored detached signature by the secret
// key in keyFile.
func Sign(image, keyFile string, passphrase []byte, sigOut string) error {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	f, err := os.Open(image)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	defer f.Close()
	if sigOut == "" {
		sigOut = image + ".asc"
	}
	err = atomicfile.Write(sigOut, 0o644, func(w io.Writer) error {
		return signing.Sign(w, key, passphrase, f)
	})
	if err != nil {
		return fmt.Errorf("sign %s with %s: %w", image, keyFile, errors.Unwrap(err))
	}
	return nil
}
