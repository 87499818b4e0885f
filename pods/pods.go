package pods

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/internal/rktgroup"
	"github.com/rkt-ng/rkt/pods/layout"
)

// Sentinel errors of the pod store.
var (
	ErrNotFound  = errors.New("pod not found")
	ErrAmbiguous = errors.New("ambiguous pod reference")
	ErrLocked    = errors.New("pod is locked")
	ErrRunning   = errors.New("pod is running")
	ErrNameInUse = errors.New("pod name in use")
	ErrBadState  = errors.New("pod is in the wrong state")
)

// Dir is a directory holding the pods of one data directory ($DATA/pods).
type Dir struct {
	root string
}

// Directory names of the states, as rkt.
const (
	dirEmbryo        = "embryo"
	dirPrepare       = "prepare"
	dirPrepared      = "prepared"
	dirRun           = "run"
	dirExitedGarbage = "exited-garbage"
	dirGarbage       = "garbage"
)

var stateDirs = []string{dirEmbryo, dirPrepare, dirPrepared, dirRun, dirExitedGarbage, dirGarbage}

// State is the observed state of a pod: its directory and whether it is locked.
type State string

// States as rkt's pod-lifecycle.md.
const (
	Embryo          State = "embryo"
	Preparing       State = "preparing"
	AbortedPrepare  State = "aborted prepare"
	Prepared        State = "prepared"
	Running         State = "running"
	Exited          State = "exited"
	ExitedDeleting  State = "exited deleting"
	ExitedGarbage   State = "exited garbage"
	Deleting        State = "deleting"
	Garbage         State = "garbage"
	stateUnknown    State = "unknown"
	namesLockFile         = ".names.lock"
	uuidPattern           = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
	minPrefixLength       = 2
)

var uuidRE = regexp.MustCompile(uuidPattern)

// NameRE is what a pod name may look like (an appc AC Name).
var NameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// DirMode is the mode of pods/, its state directories and each pod
// directory: root only. A pod directory holds the pod's rootfs (its image
// trees with their setuid files and device nodes, overlay upper dirs); no
// other local user may reach them. Apps reach their rootfs from inside the
// pod's mount namespace, never through this path. When the host has the
// group rkt (internal/rktgroup), these directories are root:rkt 2750
// instead, so that its members can read pod information; the pod's rootfs
// and overlays are then in its stage1/ and overlay/, which stay 0700.
const DirMode = 0o700

// EmbryoTimeout is how long an unlocked embryo may be in the middle of being
// created: pod gc collects an older one, and image gc leaves the store's
// trees alone while a younger one exists.
const EmbryoTimeout = time.Minute

// OpenDir opens (creating if needed) the pods directory under dataDir and
// makes it and its state directories root-only (DirMode), fixing up a
// directory that an older version left searchable.
func OpenDir(dataDir string) (*Dir, error) {
	d := &Dir{root: filepath.Join(dataDir, "pods")}
	for _, dir := range append([]string{""}, stateDirs...) {
		p := filepath.Join(d.root, dir)
		if err := os.MkdirAll(p, DirMode); err != nil {
			return nil, fmt.Errorf("open pods directory: %w", err)
		}
		if err := rktgroup.Fix(p, DirMode, true); err != nil {
			return nil, fmt.Errorf("open pods directory: %w", err)
		}
	}
	return d, nil
}

// Root is $DATA/pods.
func (d *Dir) Root() string { return d.root }

// NewUUID returns a random RFC 4122 version 4 UUID.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux ≥ 3.17
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Pod is one pod directory and, while this process holds it, its lock.
type Pod struct {
	UUID  string
	dir   *Dir
	sdir  string // state directory it was found in
	lock  *flock.Lock
	state State
	// upper caches the stage1 overlay's upper dir ("-" for none).
	upper string
}

// Create makes a new pod: an embryo directory, locked and moved to prepare/.
// If name is not empty it is recorded and must be unique among pods that are
// not garbage.
func (d *Dir) Create(name string) (*Pod, error) {
	if name != "" && !NameRE.MatchString(name) {
		return nil, fmt.Errorf("invalid pod name %q: must be lowercase letters, digits and dashes", name)
	}
	if uuidRE.MatchString(name) {
		// Get takes a full UUID as a UUID, never as a name.
		return nil, fmt.Errorf("invalid pod name %q: a pod name cannot be a UUID", name)
	}
	uuid := NewUUID()
	embryo := filepath.Join(d.root, dirEmbryo, uuid)
	if err := os.Mkdir(embryo, DirMode); err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(embryo) }
	// Readable by the rkt group, if any: what must stay private in it
	// (stage1/, overlay/, sharedVolumes/, mds-token) is made 0700/0600.
	if err := rktgroup.Fix(embryo, DirMode, true); err != nil {
		cleanup()
		return nil, err
	}
	l, err := flock.OpenDir(embryo)
	if err != nil {
		cleanup()
		return nil, err
	}
	if err := l.TryExclusive(); err != nil {
		l.Close()
		cleanup()
		return nil, err
	}
	if err := os.WriteFile(layout.Dir(embryo).Created(), nil, 0o640); err != nil {
		l.Close()
		cleanup()
		return nil, err
	}
	if name != "" {
		release, err := d.lockNames()
		if err != nil {
			l.Close()
			cleanup()
			return nil, err
		}
		defer release()
		// An exited pod keeps its name until gc, but a new pod may take it.
		if p, err := d.byName(name); err == nil && !p.IsFinished() {
			l.Close()
			cleanup()
			return nil, fmt.Errorf("pod name %q: %w by %s", name, ErrNameInUse, p.UUID)
		}
		if err := os.WriteFile(layout.Dir(embryo).Name(), []byte(name+"\n"), 0o640); err != nil {
			l.Close()
			cleanup()
			return nil, err
		}
	}
	if err := os.Rename(embryo, filepath.Join(d.root, dirPrepare, uuid)); err != nil {
		l.Close()
		cleanup()
		return nil, err
	}
	return &Pod{UUID: uuid, dir: d, sdir: dirPrepare, lock: l, state: Preparing}, nil
}

// lockNames serializes name checks with name assignments.
func (d *Dir) lockNames() (func(), error) {
	l, err := flock.Open(filepath.Join(d.root, namesLockFile))
	if err != nil {
		return nil, err
	}
	if err := l.Exclusive(); err != nil {
		l.Close()
		return nil, err
	}
	return func() { l.Close() }, nil
}

// Path is the pod's directory as of the last transition or lookup.
func (p *Pod) Path() string { return filepath.Join(p.dir.root, p.sdir, p.UUID) }

// State is the state observed when the pod was opened or last moved.
func (p *Pod) State() State { return p.state }

// Name is the pod's name, or "" if it has none.
func (p *Pod) Name() string {
	b, err := readSmall(p.layout().Name())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Lock is the held lock of the pod directory, or nil.
func (p *Pod) Lock() *flock.Lock { return p.lock }

// Close releases this process's lock (if any).
func (p *Pod) Close() error {
	if p.lock == nil {
		return nil
	}
	err := p.lock.Close()
	p.lock = nil
	return err
}

func (p *Pod) move(to string, st State) error {
	from := p.Path()
	dst := filepath.Join(p.dir.root, to, p.UUID)
	if err := os.Rename(from, dst); err != nil {
		return fmt.Errorf("move pod %s to %s: %w", p.UUID, to, err)
	}
	p.sdir = to
	p.state = st
	return nil
}

// ToPrepared moves a preparing pod to prepared/ and unlocks it.
func (p *Pod) ToPrepared() error {
	if p.sdir != dirPrepare || p.lock == nil {
		return fmt.Errorf("pod %s: %w: %s, want preparing", p.UUID, ErrBadState, p.state)
	}
	if err := p.move(dirPrepared, Prepared); err != nil {
		return err
	}
	return p.Close()
}

// ToRun moves a locked preparing or prepared pod to run/, keeping the lock.
func (p *Pod) ToRun() error {
	if (p.sdir != dirPrepare && p.sdir != dirPrepared) || p.lock == nil {
		return fmt.Errorf("pod %s: %w: %s, want prepared", p.UUID, ErrBadState, p.state)
	}
	return p.move(dirRun, Running)
}

// ToAbortedPrepare marks a failed preparation for gc: it stays in prepare/ and
// is unlocked, which rkt's gc treats as garbage.
func (p *Pod) ToAbortedPrepare() error {
	p.state = AbortedPrepare
	return p.Close()
}

// ToGarbage moves a pod to its garbage state: exited pods to exited-garbage/,
// never-run pods to garbage/. The caller must hold the lock or the pod must be
// unlocked and not running.
func (p *Pod) ToGarbage() error {
	switch p.sdir {
	case dirRun:
		return p.move(dirExitedGarbage, ExitedGarbage)
	case dirPrepare, dirPrepared, dirEmbryo:
		return p.move(dirGarbage, Garbage)
	}
	return nil
}

// TakeLock takes the pod's exclusive lock without blocking (ErrLocked if held).
func (p *Pod) TakeLock() error {
	if p.lock != nil {
		return nil
	}
	l, err := flock.OpenDir(p.Path())
	if err != nil {
		return err
	}
	if err := l.TryExclusive(); err != nil {
		l.Close()
		if errors.Is(err, flock.ErrLocked) {
			return fmt.Errorf("pod %s: %w", p.UUID, ErrLocked)
		}
		return err
	}
	p.lock = l
	return nil
}

// IsFinished reports whether the pod has exited or will never run.
func (p *Pod) IsFinished() bool {
	switch p.state {
	case Exited, ExitedGarbage, ExitedDeleting, AbortedPrepare, Garbage, Deleting:
		return true
	}
	return false
}

// IsGarbage reports whether gc has marked the pod.
func (p *Pod) IsGarbage() bool {
	return p.sdir == dirExitedGarbage || p.sdir == dirGarbage
}

// Created is the pod's creation time.
func (p *Pod) Created() time.Time {
	fi, err := os.Stat(p.layout().Created())
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// MarkedAt is when the pod entered its current state directory (ctime of the
// directory, changed by rename); gc's grace period counts from it.
func (p *Pod) MarkedAt() time.Time {
	return ctime(p.Path())
}

// LockApps blocks until it holds the lock that serializes changes to the
// apps of a running mutable pod (rkt app add, start, stop, rm): an exclusive
// flock(2) on its appsinfo directory, since the pod directory's own lock is
// held by the stage1 for as long as the pod runs. Close releases it.
func (p *Pod) LockApps() (*flock.Lock, error) {
	l, err := flock.OpenDir(p.AppsInfoDir())
	if err != nil {
		return nil, fmt.Errorf("pod %s: apps lock: %w", p.UUID, err)
	}
	if err := l.Exclusive(); err != nil {
		l.Close()
		return nil, fmt.Errorf("pod %s: apps lock: %w", p.UUID, err)
	}
	return l, nil
}
