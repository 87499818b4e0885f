package stage2

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/rkt-ng/rkt/pods/layout"
)

// Paths inside the pod (the stage1 rootfs) that stage2 reads and writes. They
// are part of the stage1 ABI (docs/stage1-abi.md, pods/layout).
const (
	StatusDir        = layout.StatusDir
	SupervisorStatus = layout.SupervisorStatus
	EnvDir           = layout.EnvDir
	EnterSocket      = layout.EnterSocket
)

// Config is what stage1 tells stage2, as JSON on fd 3.
type Config struct {
	PodUUID     string        `json:"podUUID"`
	Apps        []App         `json:"apps"`
	StopTimeout time.Duration `json:"stopTimeout"`
	Debug       bool          `json:"debug,omitempty"`
	// Mutable makes the pod a sandbox (rkt app): it runs until it is
	// stopped, with or without apps; an app's exit, even a failure, does
	// not stop it; apps are added, started, stopped and removed through
	// the enter socket (AppRequest). Its exit status is 0.
	Mutable bool `json:"mutable,omitempty"`
	// InitCgroupProcs are files through which the init joins its cgroup
	// (writing "0", itself) before it starts any app: the thread that starts
	// apps is the one that moves (see cgroups.App.JoinFiles).
	InitCgroupProcs []string `json:"initCgroupProcs,omitempty"`
}

// App is everything stage2 needs to start one app and its event handlers.
type App struct {
	Name string `json:"name"`
	// Root is the app's rootfs inside the pod (/opt/stage2/<name>/rootfs).
	Root string `json:"root"`
	Proc Proc   `json:"proc"`
	// PreStart and PostStop are event handler commands, run as root in Root.
	PreStart []string `json:"preStart,omitempty"`
	PostStop []string `json:"postStop,omitempty"`
	// StopSignal asks the app to stop (default SIGTERM).
	StopSignal int `json:"stopSignal,omitempty"`
	// NotifySocket, if set, is the app's sd_notify socket (pod view): the
	// pod is ready only once the app sent READY=1 on it.
	NotifySocket string `json:"notifySocket,omitempty"`
	// Terminal gives the app the init's own stdin, stdout and stderr (the
	// pod's pseudo-terminal under --interactive) as its controlling
	// terminal; otherwise the app's stdin is the init's (/dev/null) and its
	// output goes through the log pipes.
	Terminal bool `json:"terminal,omitempty"`
	// ListenFds are fds of this process holding the app's socket-activated
	// listeners, in order; ListenNames are their port names.
	ListenFds   []int    `json:"listenFds,omitempty"`
	ListenNames []string `json:"listenNames,omitempty"`
	// Stdin makes the app's stdin a pipe that stage2 keeps open for attach
	// clients (OpAttach); StdinOnce closes it once the first client's stdin
	// ended (CRI stdin and stdin_once).
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
}

// Proc is one process to start inside an app: the app itself, an event
// handler, or an `rkt enter` command. The launcher applies it in order:
// cgroup, oom score, pivot_root into Root (in the launcher's own mount
// namespace), chdir, groups, gid, no_new_privs, seccomp, capabilities with
// uid, exec. The launcher runs in a new session.
type Proc struct {
	Args       []string `json:"args"`
	Env        []string `json:"env"`
	Root       string   `json:"root"`
	WorkingDir string   `json:"workingDir"`
	UID        uint32   `json:"uid"`
	GID        uint32   `json:"gid"`
	Groups     []uint32 `json:"groups,omitempty"`
	// CgroupProcs are files the process joins its cgroups through, by
	// writing "0" (itself) from the thread that execs (cgroups.App.JoinFiles).
	CgroupProcs []string `json:"cgroupProcs,omitempty"`
	OOMScoreAdj *int     `json:"oomScoreAdj,omitempty"`
	// Caps is the app's capability set by name; nil means appc's default
	// set and an empty list means none (so no omitempty).
	Caps []string `json:"caps"`
	// CapsRetained says Caps came from a retain set, which a non-root
	// process then holds (effective, permitted and ambient). Otherwise a
	// non-root process holds no capability: Caps only bounds it.
	CapsRetained bool `json:"capsRetained,omitempty"`
	// CapsUnrestricted leaves capabilities untouched (--insecure-options=capabilities).
	CapsUnrestricted bool `json:"capsUnrestricted,omitempty"`
	NoNewPrivs       bool `json:"noNewPrivs,omitempty"`
	// Seccomp is nil when no filter is installed.
	Seccomp *Seccomp `json:"seccomp,omitempty"`
	// ListenFds is how many socket-activated listeners follow the launcher's
	// own fds (from fd 5); they become fds 3.. of the app with LISTEN_FDS,
	// LISTEN_PID and LISTEN_FDNAMES set (sd_listen_fds(3)).
	ListenFds   int      `json:"listenFds,omitempty"`
	ListenNames []string `json:"listenNames,omitempty"`
}

// Seccomp is a resolved appc seccomp isolator.
type Seccomp struct {
	Retain   bool     `json:"retain"`
	Syscalls []string `json:"syscalls"`
	Errno    string   `json:"errno,omitempty"`
}

// ReadConfig decodes a Config from f.
func ReadConfig(f *os.File) (*Config, error) {
	var c Config
	if err := json.NewDecoder(f).Decode(&c); err != nil {
		return nil, fmt.Errorf("read stage2 config: %w", err)
	}
	return &c, nil
}
