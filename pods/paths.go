package pods

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/untrusted"
	"github.com/rkt-ng/rkt/pods/layout"
)

type timeT = time.Time

func timeOf(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }

// layout is the pod directory's layout (pods/layout).
func (p *Pod) layout() layout.Dir { return layout.Dir(p.Path()) }

// ManifestPath is the reified pod manifest.
func (p *Pod) ManifestPath() string { return p.layout().PodManifest() }

// PrivateDirs are the pod directory's subdirectories that hold the pod's
// rootfs and overlays, made 0700 root before anything is put in them, so
// that a pod directory readable by the rkt group (internal/rktgroup) never
// lets its members reach an image's setuid binaries or device nodes.
func (p *Pod) PrivateDirs() []string {
	return []string{p.layout().Stage1(), p.layout().Overlay()}
}

// Stage1ManifestPath is the stage1 image manifest.
func (p *Pod) Stage1ManifestPath() string { return p.layout().Stage1Manifest() }

// Stage1RootfsPath is where the stage1 rootfs is mounted or copied.
func (p *Pod) Stage1RootfsPath() string { return p.layout().Stage1Rootfs() }

// Stage1TreeStoreIDPath records the stage1 tree.
func (p *Pod) Stage1TreeStoreIDPath() string { return p.layout().Stage1TreeStoreID() }

// AppsInfoDir holds a directory per app (AppInfoDir).
func (p *Pod) AppsInfoDir() string { return p.layout().AppsInfo() }

// AppInfoDir holds an app's image manifest and tree ID.
func (p *Pod) AppInfoDir(app string) string { return p.layout().AppInfo(app) }

// AppManifestPath is an app's image manifest.
func (p *Pod) AppManifestPath(app string) string { return p.layout().AppManifest(app) }

// AppTreeStoreIDPath records an app's tree.
func (p *Pod) AppTreeStoreIDPath(app string) string { return p.layout().AppTreeStoreID(app) }

// AppRootfsPath is an app's rootfs as seen from the host.
func (p *Pod) AppRootfsPath(app string) string { return p.layout().AppRootfs(app) }

// OverlayDir holds overlay upper and work dirs of the tree treeID.
func (p *Pod) OverlayDir(treeID string) string { return p.layout().OverlayTree(treeID) }

// OverlayPreparedPath is the marker saying the pod uses overlayfs.
func (p *Pod) OverlayPreparedPath() string { return p.layout().OverlayPrepared() }

// UsesOverlay reports whether the pod's rootfs are overlay mounts.
func (p *Pod) UsesOverlay() bool {
	_, err := os.Stat(p.OverlayPreparedPath())
	return err == nil
}

// NetInfoPath is the CNI teardown record.
func (p *Pod) NetInfoPath() string { return p.layout().NetInfo() }

// NetNSPath is the file naming the pod's netns bind mount.
func (p *Pod) NetNSPath() string { return p.layout().NetNS() }

// SubcgroupPath is the file naming the pod's cgroup.
func (p *Pod) SubcgroupPath() string { return p.layout().Subcgroup() }

// OptionsPath is the stage1-options.json file of rkt-ng extensions.
func (p *Pod) OptionsPath() string { return p.layout().Options() }

// CleanedPath is the marker a stage1 writes once it released the pod's
// host resources.
func (p *Pod) CleanedPath() string { return p.layout().Cleaned() }

// PrivateUsersPath holds the UID range of a --private-users pod.
func (p *Pod) PrivateUsersPath() string { return p.layout().PrivateUsersPrepared() }

// Stage1InfoPath is the stage1's KEY=VALUE report (stage1.InfoFile).
func (p *Pod) Stage1InfoPath() string { return p.layout().Stage1Info() }

// MDSTokenPath holds the metadata service token.
func (p *Pod) MDSTokenPath() string { return p.layout().MDSToken() }

// CRIRemovedPath lists the CRI containers removed from a stopped sandbox.
func (p *Pod) CRIRemovedPath() string { return p.layout().CRIRemoved() }

// stage1Data finds a path inside the stage1 rootfs (podPath, as the pod
// sees it): through the mount while it exists, else in the overlay upper
// dir after the pod exited.
func (p *Pod) stage1Data(podPath string) string {
	if p.upper == "" {
		// Worked out once per Pod value: `rkt list` asks for several paths
		// of each of many pods.
		p.upper = "-"
		if p.UsesOverlay() {
			if id, err := os.ReadFile(p.Stage1TreeStoreIDPath()); err == nil {
				p.upper = p.layout().OverlayUpper(strings.TrimSpace(string(id)), "")
			}
		}
	}
	if p.upper != "-" {
		if up := filepath.Join(p.upper, podPath); p.state != Running || exists(up) {
			return up
		}
	}
	return p.layout().InStage1(podPath)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// StatusDir is where stage2 records each app's exit status.
func (p *Pod) StatusDir() string { return p.stage1Data(layout.StatusDir) }

// ReadyPath is the supervisor-status symlink, "ready" once all apps started.
func (p *Pod) ReadyPath() string { return p.stage1Data(layout.SupervisorStatus) }

// IsReady reports whether every app of the pod has started.
func (p *Pod) IsReady() bool {
	t, err := os.Readlink(p.ReadyPath())
	return err == nil && t == layout.SupervisorReady
}

// PID is the host PID of the pod's init (from `pid`, else `ppid`'s only child).
func (p *Pod) PID() (int, error) {
	b, err := readSmall(p.layout().PID())
	if err == nil {
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
	b, err = readSmall(p.layout().PPID())
	if err != nil {
		return 0, err
	}
	ppid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, err
	}
	kids, err := os.ReadFile("/proc/" + strconv.Itoa(ppid) + "/task/" + strconv.Itoa(ppid) + "/children")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(kids))
	if len(f) != 1 {
		return 0, os.ErrNotExist
	}
	return strconv.Atoi(f[0])
}

// Started is when stage1 wrote the pid file (zero if never).
func (p *Pod) Started() time.Time {
	for _, f := range []string{p.layout().PID(), p.layout().PPID()} {
		if t := ctime(f); !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// ExitedAt approximates when the pod exited: the newest app status write.
func (p *Pod) ExitedAt() time.Time {
	_, last := p.AppStatuses()
	return last
}

// AppExitCodes reads every recorded app exit status.
func (p *Pod) AppExitCodes() map[string]int {
	codes, _ := p.AppStatuses()
	return codes
}

// AppStatuses reads the recorded app exit statuses and when the newest was
// written, in one pass over the status directory.
func (p *Pod) AppStatuses() (map[string]int, time.Time) {
	out := map[string]int{}
	var last time.Time
	dir := p.StatusDir()
	ents, _ := readDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), layout.StartedSuffix) || strings.HasSuffix(e.Name(), layout.CreatedSuffix) || strings.HasSuffix(e.Name(), StoppedSuffix) {
			continue
		}
		b, err := readSmall(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if c, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			out[e.Name()] = c
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return out, last
}

// StoppedSuffix marks, in the status directory, an app that rkt stopped
// (its stop signal, then SIGKILL after the timeout) because the pod was
// stopping: after another app failed, on `rkt stop` or on SIGTERM to
// `rkt run`. Its exit status is what the stop gave it (143 for SIGTERM).
const StoppedSuffix = layout.StoppedSuffix

// StoppedApps lists the apps that rkt stopped (StoppedSuffix).
func (p *Pod) StoppedApps() map[string]bool {
	out := map[string]bool{}
	ents, _ := readDir(p.StatusDir())
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), StoppedSuffix); ok {
			out[name] = true
		}
	}
	return out
}

// AppLogPath is an app's current log file (layout.AppLog); the rotated
// generation is layout.Rotated of it.
func (p *Pod) AppLogPath(app string) string { return p.stage1Data(layout.AppLog(app)) }

// readSmall reads a small state file that the pod may have written
// (internal/untrusted: no symlink, FIFO or device; bounded).
func readSmall(path string) ([]byte, error) { return untrusted.ReadFile(path, 4096) }

// readDir is os.ReadDir without the poller registration (see readSmall).
func readDir(path string) ([]os.DirEntry, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path) // a blocking fd: not registered with the poller
	defer f.Close()
	return f.ReadDir(-1)
}

// AppRecord is what the pod recorded about one app in its status
// directory (docs/stage1-abi.md 4.1): when it started, and its exit code
// and when that was written. The files are the pod's, read as untrusted.
type AppRecord struct {
	Started  time.Time // zero if it never started
	Finished time.Time // zero while it has no exit status
	Code     int       // valid when Finished is set
}

// AppRecord reads app's records in the status directory.
func (p *Pod) AppRecord(app string) AppRecord {
	var r AppRecord
	if fi, err := os.Lstat(p.stage1Data(layout.AppStarted(app))); err == nil && fi.Mode().IsRegular() {
		r.Started = fi.ModTime()
	}
	path := p.stage1Data(layout.AppStatus(app))
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return r
	}
	b, err := readSmall(path)
	if err != nil {
		return r
	}
	if c, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && c >= 0 && c <= 255 {
		r.Code, r.Finished = c, fi.ModTime()
	}
	return r
}
