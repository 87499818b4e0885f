// Package layout names every file of a pod directory and every path of the
// stage1 ABI inside the stage1 rootfs: the one place where these names are
// spelled. docs/stage1-abi.md says who writes each one, when, and in which
// format; layout_test.go checks that the document names every entry of All
// and that no other Go source spells one of the names again.
//
// The package is pure path arithmetic (it imports only path/filepath), so
// the small stage programs (stage2) can use it. Paths inside the stage1
// rootfs exist in two views: as the pod sees them after pivot_root
// (StatusDir is "/rkt/status") and from the host, below the pod directory
// (Dir.InStage1(StatusDir) is "<pod>/stage1/rootfs/rkt/status").
package layout

import "path/filepath"

// Files and directories of the pod directory, relative to it.
const (
	// PodManifest is the reified appc pod manifest (stage0).
	PodManifest = "pod"
	// Created is an empty file whose mtime is the pod's creation (stage0).
	Created = "pod-created"
	// Name holds the pod's --pod-name (stage0, optional).
	Name = "name"
	// Stage1 holds the stage1 image: Stage1Manifest and Stage1Rootfs.
	Stage1 = "stage1"
	// Stage1Manifest is the stage1 image manifest (stage0).
	Stage1Manifest = "stage1/manifest"
	// Stage1Rootfs is the stage1 rootfs: an overlay mount or a copy (stage0).
	Stage1Rootfs = "stage1/rootfs"
	// Stage1TreeStoreID holds the tree ID of the stage1 image (stage0).
	Stage1TreeStoreID = "stage1TreeStoreID"
	// AppsInfo holds a directory per app with AppManifest and AppTreeStoreID.
	AppsInfo = "appsinfo"
	// AppManifest, in AppsInfo/<app>, is the app's image manifest (stage0).
	AppManifest = "manifest"
	// AppTreeStoreID, in AppsInfo/<app>, is the app image's tree ID (stage0).
	AppTreeStoreID = "treeStoreID"
	// Overlay holds the overlay upper and work dirs, per tree ID (stage0).
	Overlay = "overlay"
	// OverlayUpper and OverlayWork are the two dirs of Overlay/<treeID>.
	OverlayUpper = "upper"
	OverlayWork  = "work"
	// OverlayMerge, followed by an app name, is a transient read-only
	// overlay mount point in Overlay/<treeID> from which stage0 copies an
	// OCI image's layers with --no-overlay; it is gone once prepare ends.
	OverlayMerge = "merge-"
	// OverlayPrepared is an empty marker: the rootfs are overlays (stage0).
	OverlayPrepared = "overlay-prepared"
	// Options is stage1-options.json, rkt-ng's ABI extensions (stage0).
	Options = "stage1-options.json"
	// PrivateUsersPrepared holds "SHIFT:COUNT" of a --private-users pod (stage0).
	PrivateUsersPrepared = "private-users-prepared"
	// MDSToken holds the metadata service token, mode 0600 (stage0).
	MDSToken = "mds-token"
	// PID holds the host PID of the process to enter, in decimal (stage1).
	PID = "pid"
	// PPID holds the PID of the parent of that process (rkt's stage1s).
	PPID = "ppid"
	// Subcgroup names the pod's cgroup (stage1).
	Subcgroup = "subcgroup"
	// NetNS holds the path of the pod's netns bind mount (stage1).
	NetNS = "netns"
	// NetInfo is the CNI teardown record, net-info.json (stage1).
	NetInfo = "net-info.json"
	// Cleaned is an empty marker: the run entrypoint released everything
	// the pod held on the host (stage1, rkt-ng extension).
	Cleaned = "stage1-cleaned"
	// SharedVolumes holds the pod's kind=empty volumes, one dir each (stage1).
	SharedVolumes = "sharedVolumes"
	// MutableArgs holds the run arguments of a mutable pod for its app
	// entrypoints, as JSON (ns stage1, rkt-ng extension).
	MutableArgs = "stage1-mutable-args.json"
	// KVMSocket is the KVM stage1's socket for enter and kill: its run
	// entrypoint relays them to the guest (stage1, KVM flavor only).
	KVMSocket = "kvm.sock"
	// Stage1Info holds KEY=VALUE lines a stage1 reports about how it runs
	// the pod, for `rkt status` and `rkt list --full` (stage1, optional).
	Stage1Info = "stage1-info"
	// CRIRemoved lists, as a JSON array, the CRI container IDs removed
	// from a sandbox that no longer runs (rkt-cri, optional).
	CRIRemoved = "cri-removed.json"
)

// Paths inside the stage1 rootfs as the pod sees them (absolute).
const (
	// Stage2 holds a directory per app whose rootfs is AppRootfs.
	Stage2 = "/opt/stage2"
	// RktDir is the only writable part of the stage1 root inside the pod.
	RktDir = "/rkt"
	// StatusDir holds each app's exit status and its markers (stage2).
	StatusDir = "/rkt/status"
	// EnvDir is created for rkt's per-app environment files (stage1).
	EnvDir = "/rkt/env"
	// LogDir holds each app's output and its index (stage2).
	LogDir = "/rkt/logs"
	// NotifyDir holds the sd_notify socket dir of each notify app (stage1).
	NotifyDir = "/rkt/notify"
	// SupervisorStatus is a symlink to SupervisorReady once every app
	// started (stage2).
	SupervisorStatus = "/rkt/supervisor-status"
	// EnterSocket is stage2's SOCK_SEQPACKET socket for enter and kill.
	EnterSocket = "/rkt/stage2.sock"
	// MaskDir is a read-only tmpfs (stage1) holding MaskFile, an empty
	// file of mode 0 bind-mounted over the files an app must not see (as
	// systemd's /run/systemd/inaccessible/reg under rkt's stage1).
	MaskDir  = "/rkt-mask"
	MaskFile = "/rkt-mask/file"
)

// Names and suffixes of entries below the directories above.
const (
	// SupervisorReady is the target of SupervisorStatus.
	SupervisorReady = "ready"
	// StartedSuffix, after an app name in StatusDir, marks a started app.
	StartedSuffix = "-started"
	// StoppedSuffix, after an app name in StatusDir, marks an app that rkt
	// stopped (stop signal, then SIGKILL) because the pod was stopping.
	StoppedSuffix = "-stopped"
	// CreatedSuffix is rkt's marker of a created app; rkt-ng's stage2 does
	// not write it, readers skip it.
	CreatedSuffix = "-created"
	// RotatedSuffix names the previous generation of a log (and its index).
	RotatedSuffix = ".1"
	// IndexSuffix names a log's index of "unixnano offset" lines.
	IndexSuffix = ".idx"
	// NotifySocket is the socket's name in an app's notify directory.
	NotifySocket = "notify.sock"
	// AppNotifyDir is where a notify app finds NotifySocket, in its own
	// rootfs (the app's view; stage1 binds NotifyDir/<app> there).
	AppNotifyDir = "/run/rkt/notify"
)

// Dir is a pod directory. The entrypoints run with the pod directory as
// their working directory, so Dir(".") works there.
type Dir string

func (d Dir) join(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// PodManifest is the pod manifest file.
func (d Dir) PodManifest() string { return d.join(PodManifest) }

// Created is the creation marker.
func (d Dir) Created() string { return d.join(Created) }

// Name is the pod name file.
func (d Dir) Name() string { return d.join(Name) }

// Stage1 is the directory holding the stage1 manifest and rootfs.
func (d Dir) Stage1() string { return d.join(Stage1) }

// Stage1Manifest is the stage1 image manifest.
func (d Dir) Stage1Manifest() string { return d.join(Stage1Manifest) }

// Stage1Rootfs is the stage1 rootfs, the pod's root.
func (d Dir) Stage1Rootfs() string { return d.join(Stage1Rootfs) }

// Stage1TreeStoreID is the file holding the stage1 tree ID.
func (d Dir) Stage1TreeStoreID() string { return d.join(Stage1TreeStoreID) }

// AppsInfo is the directory of per-app information.
func (d Dir) AppsInfo() string { return d.join(AppsInfo) }

// AppInfo is app's directory in AppsInfo.
func (d Dir) AppInfo(app string) string { return d.join(AppsInfo, app) }

// AppManifest is app's image manifest.
func (d Dir) AppManifest(app string) string { return d.join(AppsInfo, app, AppManifest) }

// AppTreeStoreID is the file holding app's tree ID.
func (d Dir) AppTreeStoreID(app string) string { return d.join(AppsInfo, app, AppTreeStoreID) }

// Overlay is the directory of every overlay's upper and work dirs.
func (d Dir) Overlay() string { return d.join(Overlay) }

// OverlayTree holds the upper and work dirs of the tree treeID.
func (d Dir) OverlayTree(treeID string) string { return d.join(Overlay, treeID) }

// OverlayUpper is the upper dir of an overlay of the tree treeID: the
// stage1's when app is "", else app's.
func (d Dir) OverlayUpper(treeID, app string) string {
	return d.join(Overlay, treeID, OverlayUpper, app)
}

// OverlayWork is the work dir that goes with OverlayUpper.
func (d Dir) OverlayWork(treeID, app string) string {
	return d.join(Overlay, treeID, OverlayWork, app)
}

// OverlayMerge is the transient merge mount point of app's OCI layers.
func (d Dir) OverlayMerge(treeID, app string) string {
	return d.join(Overlay, treeID, OverlayMerge+app)
}

// OverlayPrepared is the overlay marker.
func (d Dir) OverlayPrepared() string { return d.join(OverlayPrepared) }

// Options is stage1-options.json.
func (d Dir) Options() string { return d.join(Options) }

// PrivateUsersPrepared is the --private-users range file.
func (d Dir) PrivateUsersPrepared() string { return d.join(PrivateUsersPrepared) }

// MDSToken is the metadata service token file.
func (d Dir) MDSToken() string { return d.join(MDSToken) }

// PID is the pid file.
func (d Dir) PID() string { return d.join(PID) }

// PPID is the ppid file.
func (d Dir) PPID() string { return d.join(PPID) }

// Subcgroup is the subcgroup file.
func (d Dir) Subcgroup() string { return d.join(Subcgroup) }

// NetNS is the netns file.
func (d Dir) NetNS() string { return d.join(NetNS) }

// NetInfo is net-info.json.
func (d Dir) NetInfo() string { return d.join(NetInfo) }

// Cleaned is the cleaned marker.
func (d Dir) Cleaned() string { return d.join(Cleaned) }

// MutableArgs is the ns stage1's record of a mutable pod's run arguments.
func (d Dir) MutableArgs() string { return d.join(MutableArgs) }

// KVMSocket is the KVM stage1's enter and kill socket.
func (d Dir) KVMSocket() string { return d.join(KVMSocket) }

// Stage1Info is the stage1's KEY=VALUE report about the pod.
func (d Dir) Stage1Info() string { return d.join(Stage1Info) }

// CRIRemoved lists the CRI containers removed from a stopped sandbox.
func (d Dir) CRIRemoved() string { return d.join(CRIRemoved) }

// SharedVolumes is the directory of the pod's empty volumes.
func (d Dir) SharedVolumes() string { return d.join(SharedVolumes) }

// SharedVolume is the empty volume name.
func (d Dir) SharedVolume(name string) string { return d.join(SharedVolumes, name) }

// InStage1 is the host path of podPath, a path inside the stage1 rootfs as
// the pod sees it (StatusDir, AppStatus(app), ...).
func (d Dir) InStage1(podPath string) string { return d.join(Stage1Rootfs, podPath) }

// AppRootfs is app's rootfs from the host.
func (d Dir) AppRootfs(app string) string { return d.InStage1(AppRootfs(app)) }

// AppRootfs is app's rootfs as the pod sees it.
func AppRootfs(app string) string { return filepath.Join(Stage2, app, "rootfs") }

// AppStatus is app's exit status record: its exit code in decimal.
func AppStatus(app string) string { return filepath.Join(StatusDir, app) }

// AppStarted is app's started marker.
func AppStarted(app string) string { return AppStatus(app) + StartedSuffix }

// AppStopped is app's stopped-by-rkt marker.
func AppStopped(app string) string { return AppStatus(app) + StoppedSuffix }

// AppCreated is rkt's created marker of app (never written by rkt-ng).
func AppCreated(app string) string { return AppStatus(app) + CreatedSuffix }

// AppEnv is app's environment file in EnvDir (reserved; rkt-ng's stage1
// passes the environment to stage2 in its config instead).
func AppEnv(app string) string { return filepath.Join(EnvDir, app) }

// AppLog is app's current log.
func AppLog(app string) string { return filepath.Join(LogDir, app) }

// Rotated is the previous generation of the log (or index) file log.
func Rotated(log string) string { return log + RotatedSuffix }

// Index is the index of the log file log.
func Index(log string) string { return log + IndexSuffix }

// AppNotify is app's notify directory, bound to AppNotifyDir in the app.
func AppNotify(app string) string { return filepath.Join(NotifyDir, app) }

// AppNotifySocket is app's sd_notify socket as stage2 sees it.
func AppNotifySocket(app string) string { return filepath.Join(NotifyDir, app, NotifySocket) }

// AppNotifySocketInApp is the NOTIFY_SOCKET value the app gets.
func AppNotifySocketInApp() string { return filepath.Join(AppNotifyDir, NotifySocket) }

// Placeholders that All puts where a name varies.
const (
	placeholderApp    = "<app>"
	placeholderTree   = "<treeID>"
	placeholderVolume = "<volume>"
)

// All lists every entry of the layout, with <app>, <treeID> and <volume>
// where a name varies: pod directory entries relative to it, stage1 rootfs
// entries as the pod sees them and from the host. It is what the ABI
// document must name.
func All() []string {
	const a, t, v = placeholderApp, placeholderTree, placeholderVolume
	var d Dir // relative to the pod directory
	podDir := []string{
		d.PodManifest(), d.Created(), d.Name(), d.Stage1(), d.Stage1Manifest(), d.Stage1Rootfs(),
		d.Stage1TreeStoreID(), d.AppsInfo(), d.AppManifest(a), d.AppTreeStoreID(a), d.Overlay(),
		d.OverlayUpper(t, ""), d.OverlayWork(t, ""), d.OverlayUpper(t, a), d.OverlayWork(t, a),
		d.OverlayMerge(t, a),
		d.OverlayPrepared(), d.Options(), d.PrivateUsersPrepared(), d.MDSToken(), d.PID(), d.PPID(),
		d.Subcgroup(), d.NetNS(), d.NetInfo(), d.Cleaned(), d.SharedVolume(v), d.MutableArgs(), d.KVMSocket(),
		d.Stage1Info(),
		d.CRIRemoved(),
	}
	inPod := []string{
		AppRootfs(a), RktDir, StatusDir, AppStatus(a), AppStarted(a), AppStopped(a), AppCreated(a),
		EnvDir, AppEnv(a), LogDir, AppLog(a), Index(AppLog(a)), Rotated(AppLog(a)), Index(Rotated(AppLog(a))),
		NotifyDir, AppNotifySocket(a), AppNotifySocketInApp(), SupervisorStatus, EnterSocket, MaskDir, MaskFile,
	}
	out := append([]string{}, podDir...)
	out = append(out, inPod...)
	for _, p := range inPod {
		if p != AppNotifySocketInApp() { // inside the app's rootfs, not stage1's
			out = append(out, d.InStage1(p))
		}
	}
	return out
}
