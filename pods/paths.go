package pods

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/untrusted"
)

type timeT = time.Time

func timeOf(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }

// ManifestPath is the reified pod manifest.
func (p *Pod) ManifestPath() string { return filepath.Join(p.Path(), manifestFile) }

// Stage1ManifestPath is the stage1 image manifest.
func (p *Pod) Stage1ManifestPath() string { return filepath.Join(p.Path(), "stage1", "manifest") }

// Stage1RootfsPath is where the stage1 rootfs is mounted or copied.
func (p *Pod) Stage1RootfsPath() string { return filepath.Join(p.Path(), "stage1", "rootfs") }

// Stage1TreeStoreIDPath records the stage1 tree.
func (p *Pod) Stage1TreeStoreIDPath() string { return filepath.Join(p.Path(), stage1TreeStoreIDFile) }

// AppInfoDir holds an app's image manifest and tree ID.
func (p *Pod) AppInfoDir(app string) string { return filepath.Join(p.Path(), "appsinfo", app) }

// AppRootfsPath is an app's rootfs as seen from the host.
func (p *Pod) AppRootfsPath(app string) string {
	return filepath.Join(p.Stage1RootfsPath(), "opt", "stage2", app, "rootfs")
}

// OverlayDir holds overlay upper and work dirs of the tree treeID.
func (p *Pod) OverlayDir(treeID string) string { return filepath.Join(p.Path(), "overlay", treeID) }

// OverlayPreparedPath is the marker saying the pod uses overlayfs.
func (p *Pod) OverlayPreparedPath() string { return filepath.Join(p.Path(), "overlay-prepared") }

// UsesOverlay reports whether the pod's rootfs are overlay mounts.
func (p *Pod) UsesOverlay() bool {
	_, err := os.Stat(p.OverlayPreparedPath())
	return err == nil
}

// NetInfoPath is the CNI teardown record.
func (p *Pod) NetInfoPath() string { return filepath.Join(p.Path(), "net-info.json") }

// NetNSPath is the file naming the pod's netns bind mount.
func (p *Pod) NetNSPath() string { return filepath.Join(p.Path(), "netns") }

// SubcgroupPath is the file naming the pod's cgroup.
func (p *Pod) SubcgroupPath() string { return filepath.Join(p.Path(), "subcgroup") }

// OptionsPath is the stage1-options.json file of rkt-ng extensions.
func (p *Pod) OptionsPath() string { return filepath.Join(p.Path(), "stage1-options.json") }

// stage1Data finds a path inside the stage1 rootfs: through the mount while
// it exists, else in the overlay upper dir after the pod exited.
func (p *Pod) stage1Data(rel string) string {
	if p.upper == "" {
		// Worked out once per Pod value: `rkt list` asks for several paths
		// of each of many pods.
		p.upper = "-"
		if p.UsesOverlay() {
			if id, err := os.ReadFile(p.Stage1TreeStoreIDPath()); err == nil {
				p.upper = filepath.Join(p.OverlayDir(strings.TrimSpace(string(id))), "upper")
			}
		}
	}
	if p.upper != "-" {
		if up := filepath.Join(p.upper, rel); p.state != Running || exists(up) {
			return up
		}
	}
	return filepath.Join(p.Stage1RootfsPath(), rel)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// StatusDir is where stage2 records each app's exit status.
func (p *Pod) StatusDir() string { return p.stage1Data(filepath.Join("rkt", "status")) }

// ReadyPath is the supervisor-status symlink, "ready" once all apps started.
func (p *Pod) ReadyPath() string { return p.stage1Data(filepath.Join("rkt", "supervisor-status")) }

// IsReady reports whether every app of the pod has started.
func (p *Pod) IsReady() bool {
	t, err := os.Readlink(p.ReadyPath())
	return err == nil && t == "ready"
}

// PID is the host PID of the pod's init (from `pid`, else `ppid`'s only child).
func (p *Pod) PID() (int, error) {
	b, err := readSmall(filepath.Join(p.Path(), pidFile))
	if err == nil {
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
	b, err = readSmall(filepath.Join(p.Path(), ppidFile))
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
	for _, f := range []string{pidFile, ppidFile} {
		if t := ctime(filepath.Join(p.Path(), f)); !t.IsZero() {
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
		if strings.HasSuffix(e.Name(), "-started") || strings.HasSuffix(e.Name(), "-created") || strings.HasSuffix(e.Name(), StoppedSuffix) {
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
const StoppedSuffix = "-stopped"

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

// AppLogPath is an app's current log file (see stage2.LogDir); the rotated
// generation is the same path with ".1" appended.
func (p *Pod) AppLogPath(app string) string { return p.stage1Data(filepath.Join("rkt", "logs", app)) }

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
