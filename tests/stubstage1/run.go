package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"
)

// defaultPath is appc's PATH for an app whose image sets none (ace.md).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultStopTimeout is how long apps get between SIGTERM and SIGKILL when
// stage1-options.json says nothing.
const defaultStopTimeout = 10 * time.Second

// appConfig is what the run process tells an app's helper (fd 3, JSON).
type appConfig struct {
	Name   string   `json:"name"`
	Rootfs string   `json:"rootfs"` // host path, absolute
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	// User and Group are names or numbers, resolved in the app's rootfs.
	User              string `json:"user"`
	Group             string `json:"group"`
	SupplementaryGIDs []int  `json:"supplementaryGIDs,omitempty"`
	WorkingDir        string `json:"workingDir"`
	Binds             []bind `json:"binds,omitempty"`
}

// bind is one volume of an app: a host path bound at a path in its rootfs.
type bind struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

func run(args []string) int {
	if err := checkLockFD(); err != nil {
		return fail("%v", err)
	}
	if net, ok := flagValue(args, "net"); !ok || net != "host" {
		return fail("--net=%s: this stage1 has no network support; only --net=host", net)
	}
	if err := writeFileAtomic("pid", strconv.Itoa(os.Getpid())); err != nil {
		return fail("write pid: %v", err)
	}
	fmt.Printf("stub stage1 ran: %s\n", lastArg(args))
	fmt.Printf("stub stage1 args: %s\n", strings.Join(args, " "))
	cfgs, err := appConfigs()
	if err != nil {
		return fail("%v", err)
	}
	timeout, err := stopTimeout()
	if err != nil {
		return fail("%v", err)
	}
	for _, d := range []string{statusDir, logDir, procDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail("%v", err)
		}
	}
	s := &supervisor{timeout: timeout, exits: make(chan appExit), running: map[string]int{}, stopped: map[string]bool{}}
	return s.run(cfgs)
}

// checkLockFD checks the stage1 ABI's lock: RKT_LOCK_FD is an open fd of
// the pod directory (our working directory) that holds a flock.
func checkLockFD() error {
	s := os.Getenv("RKT_LOCK_FD")
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 0 {
		return fmt.Errorf("RKT_LOCK_FD %q: not a file descriptor", s)
	}
	var li, wd unix.Stat_t
	if err := unix.Fstat(fd, &li); err != nil {
		return fmt.Errorf("RKT_LOCK_FD %d: %w", fd, err)
	}
	if err := unix.Stat(".", &wd); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	if li.Dev != wd.Dev || li.Ino != wd.Ino {
		return fmt.Errorf("RKT_LOCK_FD %d is not the pod directory (the working directory)", fd)
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return fmt.Errorf("RKT_LOCK_FD %d: %w", fd, err)
	}
	if !strings.Contains(string(info), "FLOCK") {
		return fmt.Errorf("RKT_LOCK_FD %d holds no flock", fd)
	}
	return nil
}

// stopTimeout reads stopTimeout from stage1-options.json (rkt-ng's
// extension file, which a stage1 may ignore).
func stopTimeout() (time.Duration, error) {
	b, err := os.ReadFile("stage1-options.json")
	if errors.Is(err, os.ErrNotExist) {
		return defaultStopTimeout, nil
	}
	if err != nil {
		return 0, err
	}
	var o struct {
		StopTimeout string `json:"stopTimeout"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return 0, fmt.Errorf("stage1-options.json: %w", err)
	}
	if o.StopTimeout == "" {
		return defaultStopTimeout, nil
	}
	d, err := time.ParseDuration(o.StopTimeout)
	if err != nil {
		return 0, fmt.Errorf("stage1-options.json: stopTimeout: %w", err)
	}
	return d, nil
}

// appConfigs turns the pod manifest into one helper config per app.
func appConfigs() ([]appConfig, error) {
	b, err := os.ReadFile("pod")
	if err != nil {
		return nil, err
	}
	var pm schema.PodManifest
	if err := json.Unmarshal(b, &pm); err != nil {
		return nil, fmt.Errorf("pod manifest: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	vols := map[types.ACName]types.Volume{}
	for _, v := range pm.Volumes {
		vols[v.Name] = v
	}
	var out []appConfig
	for _, ra := range pm.Apps {
		name := ra.Name.String()
		app := ra.App
		if app == nil {
			b, err := os.ReadFile(filepath.Join("appsinfo", name, "manifest"))
			if err != nil {
				return nil, fmt.Errorf("app %s: %w", name, err)
			}
			var im schema.ImageManifest
			if err := json.Unmarshal(b, &im); err != nil {
				return nil, fmt.Errorf("app %s: image manifest: %w", name, err)
			}
			app = im.App
		}
		if app == nil || len(app.Exec) == 0 {
			return nil, fmt.Errorf("app %s: nothing to execute", name)
		}
		c := appConfig{
			Name:              name,
			Rootfs:            filepath.Join(wd, rootfsDir, "opt", "stage2", name, "rootfs"),
			Args:              app.Exec,
			Env:               environment(name, app.Environment),
			User:              app.User,
			Group:             app.Group,
			SupplementaryGIDs: app.SupplementaryGIDs,
			WorkingDir:        app.WorkingDirectory,
		}
		for _, m := range ra.Mounts {
			v, ok := vols[m.Volume]
			if !ok {
				if m.AppVolume == nil {
					return nil, fmt.Errorf("app %s: mount %s: volume %q is not declared", name, m.Path, m.Volume)
				}
				v = *m.AppVolume
			}
			src, err := volumeSource(wd, v)
			if err != nil {
				return nil, fmt.Errorf("app %s: %w", name, err)
			}
			ro := v.ReadOnly != nil && *v.ReadOnly
			for _, mp := range app.MountPoints {
				ro = ro || (mp.Path == m.Path && mp.ReadOnly)
			}
			c.Binds = append(c.Binds, bind{Source: src, Target: m.Path, ReadOnly: ro})
		}
		out = append(out, c)
	}
	return out, nil
}

// environment is an app's environment by appc's executor rules (ace.md):
// the image's variables, PATH unless the image sets it, AC_APP_NAME, and
// container=rkt as rkt adds.
func environment(app string, env types.Environment) []string {
	var out []string
	hasPath := false
	for _, e := range env {
		if e.Name == "AC_APP_NAME" || e.Name == "container" {
			continue
		}
		hasPath = hasPath || e.Name == "PATH"
		out = append(out, e.Name+"="+e.Value)
	}
	if !hasPath {
		out = append(out, "PATH="+defaultPath)
	}
	return append(out, "AC_APP_NAME="+app, "container=rkt")
}

// volumeSource is the host path of a volume: a host volume's source, or an
// empty volume made in the pod directory (sharedVolumes/NAME, as rkt).
func volumeSource(podDir string, v types.Volume) (string, error) {
	switch v.Kind {
	case "host":
		fi, err := os.Lstat(v.Source)
		if err != nil {
			return "", fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("volume %s: host source %s is a symlink", v.Name, v.Source)
		}
		return v.Source, nil
	case "empty":
		dir := filepath.Join(podDir, "sharedVolumes", v.Name.String())
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return "", err
		}
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
		mode := uint64(0o755)
		if v.Mode != nil {
			m, err := strconv.ParseUint(*v.Mode, 8, 32)
			if err != nil {
				return "", fmt.Errorf("volume %s: mode %q: %w", v.Name, *v.Mode, err)
			}
			mode = m
		}
		uid, gid := 0, 0
		if v.UID != nil {
			uid = *v.UID
		}
		if v.GID != nil {
			gid = *v.GID
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
		return dir, os.Chmod(dir, os.FileMode(mode)&os.ModePerm)
	default:
		return "", fmt.Errorf("volume %s: kind %q is not supported", v.Name, v.Kind)
	}
}

// appExit is the end of an app's main process.
type appExit struct {
	app  string
	code int
	// signal is the signal that killed it, 0 if it exited.
	signal unix.Signal
}

// supervisor runs the pod's apps; only its run goroutine touches its maps.
type supervisor struct {
	timeout time.Duration
	exits   chan appExit
	// running maps the apps still running to their PIDs.
	running map[string]int
	// stopped are the apps the stub sent SIGTERM.
	stopped map[string]bool
	// first is the exit code of the first app that failed, or -1.
	first    int
	deadline <-chan time.Time
}

func (s *supervisor) run(cfgs []appConfig) int {
	s.first = -1
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(sigs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, c := range cfgs {
		pid, err := s.start(&wg, c)
		if err != nil {
			fmt.Fprintf(os.Stderr, "stub stage1: app %s: %v\n", c.Name, err)
			s.record(c.Name, 254)
			s.fail(254)
			break
		}
		s.running[c.Name] = pid
		if err := writeProc(c.Name, pid); err != nil {
			fmt.Fprintf(os.Stderr, "stub stage1: app %s: record its process: %v\n", c.Name, err)
		}
		if err := writeFileAtomic(filepath.Join(statusDir, c.Name+"-started"), ""); err != nil {
			fmt.Fprintf(os.Stderr, "stub stage1: app %s: %v\n", c.Name, err)
		}
	}
	if s.first < 0 {
		if err := os.Symlink("ready", readyLink); err != nil {
			fmt.Fprintf(os.Stderr, "stub stage1: %v\n", err)
		}
	}
	for len(s.running) > 0 {
		select {
		case e := <-s.exits:
			delete(s.running, e.app)
			s.record(e.app, e.code)
			byUs := s.stopped[e.app] && (e.signal == unix.SIGTERM || e.signal == unix.SIGKILL)
			if byUs {
				if err := writeFileAtomic(filepath.Join(statusDir, e.app+"-stopped"), ""); err != nil {
					fmt.Fprintf(os.Stderr, "stub stage1: %v\n", err)
				}
			}
			if e.code != 0 && !byUs {
				s.fail(e.code)
			}
		case <-sigs:
			s.stopAll()
		case <-s.deadline:
			for _, pid := range s.running {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	if s.first >= 0 {
		return s.first
	}
	return 0
}

// fail records the first failure, which decides the pod's exit code, and
// stops the other apps.
func (s *supervisor) fail(code int) {
	if s.first < 0 {
		s.first = code
		s.stopAll()
	}
}

func (s *supervisor) stopAll() {
	for app, pid := range s.running {
		if !s.stopped[app] {
			s.stopped[app] = true
			unix.Kill(pid, unix.SIGTERM)
		}
	}
	if s.deadline == nil {
		s.deadline = time.After(s.timeout)
	}
}

func (s *supervisor) record(app string, code int) {
	if err := writeFileAtomic(filepath.Join(statusDir, app), strconv.Itoa(code)); err != nil {
		fmt.Fprintf(os.Stderr, "stub stage1: app %s: record exit status: %v\n", app, err)
	}
}

// start starts an app's helper and waits until it has exec'd the app (or
// failed to set it up). A goroutine, counted in wg, then waits for the
// app and sends its exit on s.exits.
func (s *supervisor) start(wg *sync.WaitGroup, c appConfig) (int, error) {
	cfg, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	log, err := os.OpenFile(filepath.Join(logDir, c.Name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	type started struct {
		pid int
		err error
	}
	ch := make(chan started)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer log.Close()
		// The helper's parent-death signal fires when the thread that
		// forked it exits: this goroutine keeps its thread until the app
		// has exited, so the app dies with the run process and no sooner.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		pid, wait, err := spawn(c.Name, cfg, log)
		ch <- started{pid, err}
		if err != nil {
			return
		}
		s.exits <- wait()
	}()
	r := <-ch
	return r.pid, r.err
}

// spawn starts the helper for one app; wait waits for the app's end.
func spawn(app string, cfg []byte, log *os.File) (int, func() appExit, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer cfgR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		cfgW.Close()
		return 0, nil, err
	}
	defer errR.Close()
	var mu sync.Mutex // serializes the two streams' writes to log
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{appExecArg0}
	cmd.Stdout = &teeWriter{mu: &mu, log: log, out: os.Stdout}
	cmd.Stderr = &teeWriter{mu: &mu, log: log, out: os.Stderr}
	cmd.ExtraFiles = []*os.File{cfgR, errW}
	// Output copying ends when the app's pipes close; a daemon the app left
	// behind must not keep the pod from exiting.
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS, Pdeathsig: unix.SIGKILL}
	err = cmd.Start()
	errW.Close()
	if err != nil {
		cfgW.Close()
		return 0, nil, err
	}
	_, werr := cfgW.Write(cfg)
	cfgW.Close()
	// The helper closes fd 4 by exec'ing the app (close-on-exec), or
	// writes why it could not before exiting.
	msg, _ := io.ReadAll(io.LimitReader(errR, 4096))
	if len(msg) > 0 || werr != nil {
		cmd.Wait()
		if len(msg) == 0 {
			return 0, nil, fmt.Errorf("send config: %w", werr)
		}
		return 0, nil, errors.New(strings.TrimSpace(string(msg)))
	}
	wait := func() appExit {
		cmd.Wait()
		e := appExit{app: app, code: 254}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			switch {
			case ws.Exited():
				e.code = ws.ExitStatus()
			case ws.Signaled():
				e.signal = unix.Signal(ws.Signal())
				e.code = 128 + int(ws.Signal())
			}
		}
		return e
	}
	return cmd.Process.Pid, wait, nil
}

// teeWriter copies one output stream of an app to rkt's own stream and to
// the app's log.
type teeWriter struct {
	mu  *sync.Mutex
	log *os.File
	out *os.File
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.log.Write(p) // a full log disk must not stop the app's output
	w.mu.Unlock()
	return w.out.Write(p)
}
