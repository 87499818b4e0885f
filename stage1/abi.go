package stage1

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/pods/layout"
)

// Annotations of a stage1 image that name its entrypoints.
const (
	AnnotationRun              = "coreos.com/rkt/stage1/run"
	AnnotationEnter            = "coreos.com/rkt/stage1/enter"
	AnnotationGC               = "coreos.com/rkt/stage1/gc"
	AnnotationStop             = "coreos.com/rkt/stage1/stop"
	AnnotationInterfaceVersion = "coreos.com/rkt/stage1/interface-version"
	// The app-level entrypoints of a mutable pod (rkt 1.30's names; see
	// docs/stage1-abi.md 2.6). A stage1 supports `rkt app` only with all four.
	AnnotationAppAdd   = "coreos.com/rkt/stage1/app/add"
	AnnotationAppStart = "coreos.com/rkt/stage1/app/start"
	AnnotationAppStop  = "coreos.com/rkt/stage1/app/stop"
	AnnotationAppRm    = "coreos.com/rkt/stage1/app/rm"
	// AnnotationAppReopenLog names the app/reopen-log entrypoint (rkt-ng
	// extension, docs/stage1-abi.md 2.6): a stage1 that has it writes the
	// CRI log of apps whose options give apps.<app>.criLogPath.
	AnnotationAppReopenLog = "rkt-ng.io/stage1/app/reopen-log"
	// AnnotationAppAttach names the app/attach entrypoint (rkt-ng
	// extension, docs/stage1-abi.md 2.6.2): a stage1 that has it keeps the
	// stdin of apps whose options say apps.<app>.stdin open for attach
	// clients, and gives them the app's output.
	AnnotationAppAttach = "rkt-ng.io/stage1/app/attach"
	// AnnotationMDSTokenFile "true" says the stage1 reads the metadata
	// service token from MDSTokenFile in the pod directory, so stage0 keeps
	// it off the command line (rkt-ng extension; rkt's stage1s lack it and
	// get --mds-token as rkt's ABI defines).
	AnnotationMDSTokenFile = "rkt-ng.io/stage1/mds-token-file"
	// AnnotationImagePolicy "true" says the stage1 enforces rkt-ng's image
	// privilege policy from stage1-options.json (apps.<app>.userIsolators):
	// it refuses image isolators that ask for more than the default
	// confinement (docs/stage1-abi.md). For a stage1 without it, stage0
	// refuses such images itself, conservatively.
	AnnotationImagePolicy = "rkt-ng.io/stage1/image-privilege-policy"
)

// MDSTokenFile, in the pod directory, holds the metadata service token of
// a running pod: mode 0600, owned by root, written by stage0 before it
// execs stage1. /proc/PID/cmdline and environ are readable by every local
// user (cmdline always, environ for the same uid), a file is not.
const MDSTokenFile = layout.MDSToken

// maxMDSToken bounds what ReadMDSToken reads; tokens are 43 base64url
// characters (NewMDSToken).
const maxMDSToken = 1024

// InterfaceVersion is the version of the ABI rkt-ng speaks (rkt 1.30's).
const InterfaceVersion = 6

// EnvLockFD names the inherited fd that holds the pod directory's lock.
const EnvLockFD = "RKT_LOCK_FD"

// CleanedFile, in the pod directory, is written by a stage1 whose run
// entrypoint released everything the pod held on the host when the pod
// exited (rkt-ng extension). gc then needs no gc entrypoint for the pod;
// for a pod without it (a crash, or another stage1) gc runs the entrypoint.
const CleanedFile = layout.Cleaned

// ErrNoEntrypoint means a stage1 image lacks an entrypoint annotation.
var ErrNoEntrypoint = errors.New("stage1 image has no entrypoint")

// ErrNoAppEntrypoints means a stage1 image lacks the app-level entrypoints
// that mutable pods (`rkt app`) need.
var ErrNoAppEntrypoints = errors.New("stage1 does not support mutable pods (rkt app)")

// Entrypoints are a stage1's programs, relative to its rootfs.
type Entrypoints struct {
	Run, Enter, GC, Stop string
	// AppAdd, AppStart, AppStop and AppRm are the app-level entrypoints of
	// a mutable pod; empty when the stage1 lacks them.
	AppAdd, AppStart, AppStop, AppRm string
	// AppReopenLog is the app/reopen-log entrypoint; empty when the stage1
	// lacks it, and then it writes no CRI logs (AppOptions.CRILogPath).
	AppReopenLog string
	// AppAttach is the app/attach entrypoint; empty when the stage1 lacks
	// it, and then its apps cannot be attached to (AppOptions.Stdin).
	AppAttach string
	Version   int
	// MDSTokenFile: the stage1 reads the token from MDSTokenFile.
	MDSTokenFile bool
	// ImagePolicy: the stage1 enforces the image privilege policy.
	ImagePolicy bool
}

// EntrypointsOf reads the annotations of a stage1 image manifest. Only run is
// required; the interface version is 1 when absent, as in rkt.
func EntrypointsOf(im *schema.ImageManifest) (Entrypoints, error) {
	get := func(n string) string {
		v, _ := im.Annotations.Get(n)
		return v
	}
	e := Entrypoints{Run: get(AnnotationRun), Enter: get(AnnotationEnter), GC: get(AnnotationGC), Stop: get(AnnotationStop), Version: 1,
		MDSTokenFile: get(AnnotationMDSTokenFile) == "true", ImagePolicy: get(AnnotationImagePolicy) == "true",
		AppAdd: get(AnnotationAppAdd), AppStart: get(AnnotationAppStart), AppStop: get(AnnotationAppStop), AppRm: get(AnnotationAppRm),
		AppReopenLog: get(AnnotationAppReopenLog), AppAttach: get(AnnotationAppAttach)}
	if e.Run == "" {
		return e, fmt.Errorf("image %s: %w: annotation %s missing", im.Name, ErrNoEntrypoint, AnnotationRun)
	}
	if v := get(AnnotationInterfaceVersion); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return e, fmt.Errorf("image %s: invalid %s %q", im.Name, AnnotationInterfaceVersion, v)
		}
		e.Version = n
	}
	return e, nil
}

// Mutable reports whether the stage1 has every app-level entrypoint, and
// ErrNoAppEntrypoints naming the missing ones otherwise.
func (e Entrypoints) Mutable() error {
	var missing []string
	for _, a := range []struct{ name, val string }{
		{AnnotationAppAdd, e.AppAdd}, {AnnotationAppStart, e.AppStart},
		{AnnotationAppStop, e.AppStop}, {AnnotationAppRm, e.AppRm},
	} {
		if a.val == "" {
			missing = append(missing, a.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: annotations %s missing", ErrNoAppEntrypoints, strings.Join(missing, ", "))
	}
	return nil
}

// RunArgs are the arguments stage0 passes to the run entrypoint.
type RunArgs struct {
	Debug bool
	// Mutable (rkt's --mutable, version 1): the pod is a sandbox whose apps
	// come and go through the app entrypoints; it keeps running with no
	// app and until it is stopped.
	Mutable        bool
	Net            string // --net list as given to rkt
	Interactive    bool
	PrivateUsers   string // "UID:COUNT"
	MDSToken       string
	LocalConfig    string
	Hostname       string
	DisableCaps    bool
	DisablePaths   bool
	DisableSeccomp bool
	DNSConfMode    string // "resolv=…,hosts=…"
	IPC            string
	UUID           string
}

// field is one run argument: its flag, the interface version that introduced
// it, and where its value lives (b for a boolean flag, s for a string flag).
type field struct {
	flag    string
	version int
	b       *bool
	s       *string
}

func (a *RunArgs) fields() []field {
	return []field{
		{"debug", 1, &a.Debug, nil},
		{"mutable", 1, &a.Mutable, nil},
		{"net", 1, nil, &a.Net},
		{"interactive", 1, &a.Interactive, nil},
		{"private-users", 1, nil, &a.PrivateUsers},
		{"mds-token", 1, nil, &a.MDSToken},
		{"local-config", 1, nil, &a.LocalConfig},
		{"hostname", 2, nil, &a.Hostname},
		{"disable-capabilities-restriction", 3, &a.DisableCaps, nil},
		{"disable-paths", 3, &a.DisablePaths, nil},
		{"disable-seccomp", 3, &a.DisableSeccomp, nil},
		{"dns-conf-mode", 4, nil, &a.DNSConfMode},
		{"ipc", 6, nil, &a.IPC},
	}
}

// Argv renders the arguments for a stage1 of the given interface version.
// Arguments the version does not know are returned in dropped so that stage0
// can warn about them.
func (a RunArgs) Argv(version int) (argv, dropped []string) {
	for _, f := range a.fields() {
		var arg string
		switch {
		case f.b != nil && *f.b:
			arg = "--" + f.flag
		case f.s != nil && *f.s != "":
			arg = "--" + f.flag + "=" + *f.s
		default:
			continue
		}
		if f.version > version {
			dropped = append(dropped, arg)
			continue
		}
		argv = append(argv, arg)
	}
	return append(argv, a.UUID), dropped
}

// ParseRunArgs is the inverse of Argv, for stage1 implementations. Unknown
// flags are an error so that a mismatch between stage0 and stage1 is loud.
func ParseRunArgs(args []string) (RunArgs, error) {
	var a RunArgs
	fields := a.fields()
	for i, arg := range args {
		if !strings.HasPrefix(arg, "--") {
			if i != len(args)-1 {
				return a, fmt.Errorf("unexpected argument %q before the pod UUID", arg)
			}
			a.UUID = arg
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		found := false
		for _, f := range fields {
			if f.flag != name {
				continue
			}
			found = true
			if f.b != nil {
				*f.b = !hasVal || val == "true"
			} else {
				*f.s = val
			}
		}
		if !found {
			return a, fmt.Errorf("unknown stage1 run flag %q", arg)
		}
	}
	if a.UUID == "" {
		return a, errors.New("missing pod UUID")
	}
	return a, nil
}

// Options are rkt-ng's additions to the ABI, written by stage0 to
// stage1-options.json. A stage1 that does not know the file ignores it.
type Options struct {
	// StopTimeout is how long apps get between their stop signal and SIGKILL.
	StopTimeout Duration `json:"stopTimeout,omitempty"`
	// Ports maps the pod manifest's exposed ports (rkt's --port).
	DNS        []string `json:"dns,omitempty"`
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
	DNSDomain  string   `json:"dnsDomain,omitempty"`
	// HostsEntries are extra /etc/hosts lines ("IP NAME"); "host" copies the host's file.
	HostsEntries []string `json:"hostsEntries,omitempty"`
	// DataDir is rkt's --dir, for state kept outside the pod (IPAM leases).
	DataDir string `json:"dataDir,omitempty"`
	// SystemConfig is rkt's --system-config.
	SystemConfig string `json:"systemConfig,omitempty"`
	// NoOverlay says the rootfs were copied, not mounted.
	NoOverlay bool `json:"noOverlay,omitempty"`
	// Mutable says the pod is a sandbox (rkt app sandbox) whose apps are
	// added and removed while it runs; stage0 refuses app commands on
	// other pods. The run entrypoint gets --mutable as well.
	Mutable bool `json:"mutable,omitempty"`
	// UnappliedIsolators were reported to the user already by stage0.
	Apps map[string]AppOptions `json:"apps,omitempty"`
	// SeedVolumes are the empty volumes stage0 made for image mount points
	// that no volume satisfied (Docker's implicit volumes): each starts as a
	// copy of what the image has at the mount point, as in rkt (#2315).
	SeedVolumes []string `json:"seedVolumes,omitempty"`
}

// AppOptions are per-app extensions.
type AppOptions struct {
	// StopSignal is the signal that asks the app to stop (OCI StopSignal).
	StopSignal string `json:"stopSignal,omitempty"`
	// UserIsolators names the app's isolators that the user gave: with app
	// flags (rkt run IMAGE --caps-retain=...), or in the apps[].app of a pod
	// manifest they wrote. Every other isolator of the app came from its
	// image, and the run entrypoint refuses those that ask for more than
	// the default confinement (docs/stage1-abi.md 2.1; podspec.ConfineImage).
	UserIsolators []string `json:"userIsolators,omitempty"`
	// GrantedBy says how the user grants what an image asks for:
	// GrantedByFlags (the default) or GrantedByPodManifest. It only words
	// the refusal.
	GrantedBy string `json:"grantedBy,omitempty"`
	// CRILogPath is an absolute host path where the app's stdout and stderr
	// go in the CRI log format (an app added by the CRI server), besides
	// the pod's own log; only for a stage1 with AnnotationAppReopenLog.
	CRILogPath string `json:"criLogPath,omitempty"`
	// Stdin keeps the app's stdin a pipe that attach clients write to
	// (CRI stdin); StdinOnce closes it when the first attach client's
	// stdin ends. Only for a stage1 with AnnotationAppAttach.
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// TTY gives the app a pseudo-terminal as its stdin, stdout and stderr
	// (CRI tty; its output is one stream, stdout). Only for a stage1 with
	// AnnotationAppAttach.
	TTY bool `json:"tty,omitempty"`
}

// Values of AppOptions.GrantedBy.
const (
	GrantedByFlags       = "flags"        // rkt run IMAGE --caps-retain=...
	GrantedByPodManifest = "pod-manifest" // --pod-manifest: apps[].app.isolators
)

// Duration marshals as a Go duration string.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// ReadOptions loads stage1-options.json; a missing file gives the zero Options.
func ReadOptions(path string) (Options, error) {
	var o Options
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("%s: %w", path, err)
	}
	return o, nil
}

// NewMDSToken returns a fresh metadata service token, the format the ABI
// fixes (docs/stage1-abi.md 4.3): 256 random bits in unpadded base64url
// (43 characters), safe as a URL path segment and unrelated to the pod UUID.
func NewMDSToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("metadata service token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ReadMDSToken reads MDSTokenFile in podDir; no file gives "" (no
// metadata service). The file must be a regular file that only its owner,
// this process's user, can read; anything else is an error, so that a token
// other users could have read is never served.
func ReadMDSToken(podDir string) (string, error) {
	path := layout.Dir(podDir).MDSToken()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return "", fmt.Errorf("%s: not a regular file", path)
	case st.Mode&0o077 != 0 || int(st.Uid) != os.Geteuid():
		return "", fmt.Errorf("%s: mode %#o owner %d: want 0600 and owner %d", path, st.Mode&0o777, st.Uid, os.Geteuid())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxMDSToken+1))
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(b) > maxMDSToken || tok == "" {
		return "", fmt.Errorf("%s: not a token", path)
	}
	return tok, nil
}

// AppExitError carries an app's failure from the pod to rkt's exit code.
type AppExitError struct {
	App  string
	Code int
}

func (e *AppExitError) Error() string {
	if e.App == "" {
		return fmt.Sprintf("pod exited with status %d", e.Code)
	}
	return fmt.Sprintf("app %s exited with status %d", e.App, e.Code)
}

// AppName returns the name of an app in a pod manifest: rkt-ng keeps appc's
// rule that names are AC Names.
func AppName(s string) (types.ACName, error) {
	n, err := types.NewACName(s)
	if err != nil {
		return "", fmt.Errorf("invalid app name %q: %w", s, err)
	}
	return *n, nil
}

// AppArgs are the arguments of the app-level entrypoints (app/add,
// app/start, app/stop, app/rm): `[--debug] [--force] --app=NAME UUID`.
// --force is only for app/stop (SIGKILL at once).
type AppArgs struct {
	Debug bool
	App   string
	Force bool
	// Stdin (app/attach only): the caller's stdin goes to the app's.
	Stdin bool
	// TTY (app/attach only): the app is on a terminal, whose size the
	// caller sends as "ROWS COLS" lines on fd 3.
	TTY  bool
	UUID string
}

// Argv renders the arguments.
func (a AppArgs) Argv() []string {
	var argv []string
	if a.Debug {
		argv = append(argv, "--debug")
	}
	if a.Force {
		argv = append(argv, "--force")
	}
	if a.Stdin {
		argv = append(argv, "--stdin")
	}
	if a.TTY {
		argv = append(argv, "--tty")
	}
	return append(argv, "--app="+a.App, a.UUID)
}

// ParseAppArgs is the inverse of AppArgs.Argv. It refuses unknown flags, an
// app name that is not an AC Name and a missing UUID.
func ParseAppArgs(args []string) (AppArgs, error) {
	var a AppArgs
	for i, arg := range args {
		switch {
		case arg == "--debug":
			a.Debug = true
		case arg == "--force":
			a.Force = true
		case arg == "--stdin":
			a.Stdin = true
		case arg == "--tty":
			a.TTY = true
		case strings.HasPrefix(arg, "--app="):
			a.App = strings.TrimPrefix(arg, "--app=")
		case !strings.HasPrefix(arg, "--") && i == len(args)-1:
			a.UUID = arg
		default:
			return a, fmt.Errorf("unexpected app entrypoint argument %q", arg)
		}
	}
	if _, err := AppName(a.App); err != nil {
		return a, err
	}
	if a.UUID == "" {
		return a, errors.New("missing pod UUID")
	}
	return a, nil
}
