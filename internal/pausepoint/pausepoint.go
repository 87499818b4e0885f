// Package pausepoint stops rkt at a named point of its work, so that the
// functional tests reach a crash or race window deterministically instead
// of with sleeps (issue 17).
//
// It does nothing unless the environment names the point:
//
//	RKT_PAUSE_AT=<name>   the point to stop at
//	RKT_PAUSE_DIR=<dir>   where the handshake files live
//
// On reaching the named point, Reach creates <dir>/<name>.reached and
// waits until <dir>/<name>.release exists (or ctx ends); the test then
// SIGKILLs rkt, or runs a racing command and releases it. The environment
// is the caller's, who runs rkt as root anyway: a pod cannot set it, and a
// pause only delays what the caller asked for.
package pausepoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// Environment variables read by Reach.
const (
	EnvAt  = "RKT_PAUSE_AT"
	EnvDir = "RKT_PAUSE_DIR"
)

// Points of rkt that a test may stop at. docs/reliability.md lists what
// each one shows.
const (
	// TreeHeld: `rkt image render` holds the rendered tree (store.Hold)
	// and has not copied it yet.
	TreeHeld = "tree-held"
	// TreeGCCandidates: tree gc has listed the trees no pod records and
	// has removed none of them yet.
	TreeGCCandidates = "tree-gc-candidates"
	// LayerGCCandidates: image gc has listed the OCI layers no image uses
	// and has removed none of them yet.
	LayerGCCandidates = "layer-gc-candidates"
	// OCILayersStored: an OCI fetch has unpacked every layer and has not
	// written the image's row yet.
	OCILayersStored = "oci-layers-stored"
	// ACIDownloaded: an ACI fetch has written the whole image to its
	// temporary file in cas/tmp and has not moved it into place.
	ACIDownloaded = "aci-downloaded"
	// ACIBlobStored: an ACI fetch has moved the blob and manifest into
	// place and has not written the image's row yet.
	ACIBlobStored = "aci-blob-stored"
	// TreeRendering: a render has laid the whole tree down in
	// tree/.tmp-<id> and has not renamed it into place.
	TreeRendering = "tree-rendering"
	// ImagesResolved: prepare has fetched (or found) every app image and
	// the stage1 image and holds them; no pod directory records them yet.
	// `rkt app add` stops here too, with its image fetched and held.
	ImagesResolved = "images-resolved"
	// PodFilled: prepare has written the pod's files and mounted its
	// overlays; the pod is still in pods/prepare.
	PodFilled = "pod-filled"
	// Stage1Exec: `rkt run` holds the pod's lock in pods/run and is about
	// to exec stage1.
	Stage1Exec = "stage1-exec"
	// PodSweep: `rkt gc` has run the stage1 gc entrypoint of a garbage pod
	// and has not unmounted or removed its directory yet.
	PodSweep = "pod-sweep"

	// The points below are in the stage1 (the ns flavour's run entrypoint
	// and the pod's init, and the network setup the kvm flavour shares):
	// stage0 execs the stage1 with its own environment, so RKT_PAUSE_AT
	// and RKT_PAUSE_DIR reach it as they reach rkt.

	// Stage1NetNS: the run entrypoint has recorded and created the pod's
	// network namespace and has attached no network yet.
	Stage1NetNS = "stage1-netns"
	// Stage1NetAdded: every network of the pod is attached (CNI ADD done,
	// net-info.json written); no cgroup exists yet.
	Stage1NetAdded = "stage1-net-added"
	// Stage1Cgroups: the pod's cgroup is created and recorded; the pod's
	// init is not started yet.
	Stage1Cgroups = "stage1-cgroups"
	// Stage1Mounted: the pod's init has made every mount of its plan
	// (/proc, /sys, /dev, volumes, the apps' binds) and has not pivoted
	// into the stage1 root yet. Not reached by a --private-users pod, whose
	// init cannot write the pause directory.
	Stage1Mounted = "stage1-mounted"
	// Stage1Cleanup: the pod has exited (for instance on `rkt stop`) and
	// the run entrypoint has removed its cgroups, and has not torn down
	// its network or unmounted its overlays yet.
	Stage1Cleanup = "stage1-cleanup"
)

// Reach pauses at point name if RKT_PAUSE_AT names it; see the package
// doc. It returns ctx's error if ctx ends first, and nil otherwise.
func Reach(ctx context.Context, name string) error {
	if os.Getenv(EnvAt) != name {
		return nil
	}
	dir := os.Getenv(EnvDir)
	if dir == "" {
		return errors.New("pause point " + name + ": " + EnvDir + " is not set")
	}
	if err := os.WriteFile(filepath.Join(dir, name+".reached"), nil, 0o600); err != nil {
		return err
	}
	release := filepath.Join(dir, name+".release")
	for {
		if _, err := os.Stat(release); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
