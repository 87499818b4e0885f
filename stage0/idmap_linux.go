package stage0

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// UsernsHolderCommand is the hidden argv[1] of rkt that only waits for its
// stdin to close: a process whose user namespace gives idmapped mounts
// their mapping (mount_setattr(2) takes a user namespace fd).
const UsernsHolderCommand = "__userns-holder"

// idmapper makes idmapped bind mounts for a pod in its own user namespace:
// on-disk owner N is seen as shift+N, so the pod's root owns its image's
// root files without a copy. overlayfs itself cannot be idmapped, but its
// layers can (Linux ≥ 5.19).
type idmapper struct {
	shift  int
	nsfd   int
	holder *exec.Cmd
	stdin  io.WriteCloser
}

func newIDMapper(shift, count int) (*idmapper, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, UsernsHolderCommand)
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: shift, Size: count}}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, UidMappings: m, GidMappings: m}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("user namespace for idmapped mounts: %w", err)
	}
	nsfd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		stdin.Close()
		cmd.Wait()
		return nil, err
	}
	return &idmapper{shift: shift, nsfd: nsfd, holder: cmd, stdin: stdin}, nil
}

// bind mounts src at dst (created) with the pod's ID mapping.
func (m *idmapper) bind(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: src, Err: err}
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(m.nsfd)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return &os.PathError{Op: "mount_setattr idmap", Path: src, Err: err}
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: dst, Err: err}
	}
	return nil
}

func (m *idmapper) Close() {
	unix.Close(m.nsfd)
	m.stdin.Close()
	m.holder.Wait()
}

// layDownIdmapped mounts tree at target as an overlay whose lower dirs and
// upper/work dir are idmapped binds under overlayDir/idmap.
func layDownIdmapped(m *idmapper, lowers []string, target, overlayDir, app string) error {
	name := app
	if name == "" {
		name = "stage1"
	}
	idDir := filepath.Join(overlayDir, "idmap")
	var mapped []string
	for i, l := range lowers {
		d := filepath.Join(idDir, fmt.Sprintf("%s-lower%d", name, i))
		if err := m.bind(l, d); err != nil {
			return err
		}
		mapped = append(mapped, d)
	}
	// The same upper/work layout as without idmapping (overlay/<tree>/
	// {upper,work}[/<app>]), so that status and logs are found after exit.
	upper, work := filepath.Join(overlayDir, "upper"), filepath.Join(overlayDir, "work")
	if app != "" {
		upper, work = filepath.Join(upper, app), filepath.Join(work, app)
	}
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	rwMapped := filepath.Join(idDir, name+"-rw")
	if err := m.bind(overlayDir, rwMapped); err != nil {
		return err
	}
	rel := func(p string) string {
		r, _ := filepath.Rel(overlayDir, p)
		return filepath.Join(rwMapped, r)
	}
	// overlayfs does its upper-layer work with the credentials of whoever
	// mounted it, and host root maps to nothing on the idmapped upper
	// (EOVERFLOW, and overlayfs falls back to read-only). So the target is
	// made and the overlay mounted with the pod root's filesystem IDs
	// (setfsuid(2) is per thread: a goroutine locked to its thread until
	// they are restored).
	// The stage1 target lies in the pod directory, where root makes it; an
	// app's lies inside the stage1 overlay, where only the pod's root can.
	asRoot := os.MkdirAll(target, 0o755)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		unix.Setfsgid(m.shift)
		unix.Setfsuid(m.shift)
		// A non-zero fsuid drops the filesystem capabilities from the
		// effective set; overlayfs works with the mounter's credentials and
		// needs them (trusted.* xattrs, work dir), so raise them again.
		raiseEffective()
		var err error
		if asRoot != nil {
			err = os.MkdirAll(target, 0o755)
		}
		if err == nil {
			err = mountOverlay(target, mapped, rel(upper), rel(work))
		}
		// Back to root: rkt runs as root, which may always set its fsuid.
		unix.Setfsuid(0)
		unix.Setfsgid(0)
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// raiseEffective copies this thread's permitted capabilities into its
// effective set.
func raiseEffective() {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return
	}
	data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
	unix.Capset(&hdr, &data[0])
}
