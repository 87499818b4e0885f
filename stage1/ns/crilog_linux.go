package ns

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage2"
)

// openCRILog opens an app's CRI log (stage1.AppOptions.CRILogPath) on the
// host for appending, for stage2 to write through the fd: the pod never
// gets the path, so it cannot reach any other host file. The last component
// must not be a symlink, and the file must be a regular file with one link
// (a hard link planted in a log directory would otherwise let a pod append
// to the file it names).
func openCRILog(path string) (int, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return -1, fmt.Errorf("CRI log path %q: want a clean absolute path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return -1, fmt.Errorf("CRI log directory: %w", err)
	}
	fd, err := eintr.Retry2(func() (int, error) {
		return unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o640)
	})
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		unix.Close(fd)
		return -1, fmt.Errorf("CRI log %s: not a regular file with one link", path)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// AppReopenLog is the app/reopen-log entrypoint: it opens the app's CRI log
// path anew (the kubelet renamed the old file away) and hands the fd to
// stage2, which writes the app's output there from then on.
func AppReopenLog(args []string) error {
	aa, err := stage1.ParseAppArgs(args)
	if err != nil {
		return err
	}
	opts, err := stage1.ReadOptions(layout.Dir(".").Options())
	if err != nil {
		return err
	}
	path := opts.Apps[aa.App].CRILogPath
	if path == "" {
		return fmt.Errorf("app %s has no CRI log", aa.App)
	}
	fd, err := openCRILog(path)
	if err != nil {
		return fmt.Errorf("app %s: %w", aa.App, err)
	}
	defer unix.Close(fd)
	_, err = callStage2(stage2.EnterRequest{Op: stage2.OpReopenLog, App: aa.App}, unix.UnixRights(fd))
	return err
}

// AppAttach is the app/attach entrypoint: its stdout and stderr (and its
// stdin, with --stdin) go to stage2, which gives them the running app's
// output (and its stdin) until the app exits; it then exits with the app's
// exit status. Killing it detaches. With --tty, the sizes its caller writes
// on fd 3 resize the app's terminal.
func AppAttach(args []string) (int, error) {
	aa, err := stage1.ParseAppArgs(args)
	if err != nil {
		return 0, err
	}
	if aa.TTY {
		// The caller writes its terminal's sizes on fd 3: each becomes a
		// resize request. The goroutine ends with fd 3 (its caller) or
		// with this process.
		go relaySizes(os.NewFile(3, "sizes"), aa.App)
	}
	return callStage2(stage2.EnterRequest{Op: stage2.OpAttach, App: aa.App, AttachStdin: aa.Stdin}, unix.UnixRights(0, 1, 2))
}

// relaySizes turns "ROWS COLS" lines into OpResize requests of app.
func relaySizes(f *os.File, app string) {
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rows, cols uint16
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &rows, &cols); err != nil {
			continue
		}
		callStage2(stage2.EnterRequest{Op: stage2.OpResize, App: app, Rows: rows, Cols: cols}, nil)
	}
}
