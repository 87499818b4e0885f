package stage0

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/copytree"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage0/store"
	"github.com/rkt-ng/rkt/stage1"
)

// maxMountData is the size of the page mount(2) copies its data argument
// into; longer overlay options are cut off by the kernel.
const maxMountData = 4096

// overlayData builds the overlay mount options for lowers (topmost first).
// Lower dirs are named by path when everything fits in one page, else by
// /proc/self/fd/N of fds opened here (an image with many layers under a
// long --dir); the returned closer closes them after the mount.
func overlayData(lowers []string, upper, work string, extra string) (string, func(), error) {
	tail := ""
	if upper != "" {
		tail = ",upperdir=" + upper + ",workdir=" + work
	}
	tail += extra
	data := "lowerdir=" + strings.Join(lowers, ":") + tail
	if len(data) < maxMountData {
		return data, func() {}, nil
	}
	var fds []int
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	short := make([]string, len(lowers))
	for i, l := range lowers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return "", nil, &os.PathError{Op: "open", Path: l, Err: err}
		}
		fds = append(fds, fd)
		short[i] = "/proc/self/fd/" + strconv.Itoa(fd)
	}
	data = "lowerdir=" + strings.Join(short, ":") + tail
	if len(data) >= maxMountData {
		closeAll()
		return "", nil, fmt.Errorf("overlay of %d layers: mount options exceed %d bytes", len(lowers), maxMountData)
	}
	return data, closeAll, nil
}

// mountOverlay mounts an overlay of lowers (topmost first) at target. With
// several lowers (OCI layers), redirects and metacopy are off: the layers
// come from images, and their trusted.overlay.* xattrs other than opaque
// must not steer lookups.
func mountOverlay(target string, lowers []string, upper, work string) error {
	extra := ""
	if len(lowers) > 1 {
		extra = ",redirect_dir=off,metacopy=off"
	}
	data, done, err := overlayData(lowers, upper, work, extra)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return &os.PathError{Op: "mount overlay", Path: target, Err: err}
	}
	return nil
}

// copyLayers is layDown for --no-overlay with an OCI image: the layers are
// merged by a read-only overlay mount in the pod and copied from there.
func copyLayers(tree store.Tree, target, overlayDir, app string) error {
	lowers := tree.Lowers()
	if len(lowers) == 1 {
		return copytree.Copy(lowers[0], target)
	}
	mnt := filepath.Join(overlayDir, layout.OverlayMerge+app)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	defer os.Remove(mnt)
	// Read-only overlays need no upper dir, only two lowers or more.
	data, done, err := overlayData(lowers, "", "", ",redirect_dir=off,metacopy=off")
	if err != nil {
		return err
	}
	err = unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, data)
	done()
	if err != nil {
		return &os.PathError{Op: "mount overlay", Path: mnt, Err: err}
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	return copytree.Copy(mnt, target)
}

// stopSignals adds the stop signal of each app whose image or pod manifest
// carries one (an OCI StopSignal) to the stage1 options, unless the options
// set one already.
func stopSignals(apps map[string]stage1.AppOptions, pm *schema.PodManifest) map[string]stage1.AppOptions {
	for _, ra := range pm.Apps {
		if ra.App == nil {
			continue
		}
		sig, ok := ra.App.UserAnnotations[store.UserAnnotationStopSignal]
		if !ok || sig == "" {
			continue
		}
		name := ra.Name.String()
		if apps[name].StopSignal != "" {
			continue
		}
		if apps == nil {
			apps = map[string]stage1.AppOptions{}
		}
		ao := apps[name]
		ao.StopSignal = sig
		apps[name] = ao
	}
	return apps
}
