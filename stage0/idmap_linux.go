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

	"github.com/rkt-ng/rkt/pods/layout"
)

// UsernsHolderCommand is the hidden argv[1] of rkt that only waits for its
// stdin to close: a process whose user namespace gives idmapped mounts
// their mapping (mount_setattr(2) takes a user namespace fd).
const UsernsHolderCommand = "__userns-holder"

// idmapper makes idmapped mounts for a pod in its own user namespace:
// on-disk owner N is seen as shift+N, so the pod's root owns its image's
// root files without a copy. overlayfs itself cannot be idmapped, but its
// layers can.
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

// detached returns an idmapped copy of the mount of src as a detached mount
// (open_tree(2) OPEN_TREE_CLONE, mount_setattr(2) MOUNT_ATTR_IDMAP): a file
// descriptor that no path leads to, so nothing is attached in the host's
// mount table and nobody has to walk the host path to it later.
func (m *idmapper) detached(src string) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, &os.PathError{Op: "open_tree", Path: src, Err: err}
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(m.nsfd)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "mount_setattr idmap", Path: src, Err: err}
	}
	return fd, nil
}

func (m *idmapper) Close() {
	unix.Close(m.nsfd)
	m.stdin.Close()
	m.holder.Wait()
}

// layDownIdmapped mounts tree at target as an overlay whose layers are
// idmapped detached mounts handed to overlayfs as file descriptors
// (fsconfig(2) FSCONFIG_SET_FD "lowerdir+", "upperdir", "workdir"; Linux ≥
// 6.13). No layer is named by a path, so the pod's root never has to search
// the directories above the pod, which stay root-only (0700).
func layDownIdmapped(m *idmapper, lowers []string, target, overlayDir, app string) error {
	// The same upper/work layout as without idmapping (overlay/<tree>/
	// {upper,work}[/<app>]), so that status and logs are found after exit.
	upper, work := filepath.Join(overlayDir, layout.OverlayUpper, app), filepath.Join(overlayDir, layout.OverlayWork, app)
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("fsopen overlay", err)
	}
	fds = append(fds, fsfd)
	setFd := func(key, path string, fd int) error {
		if err := unix.FsconfigSetFd(fsfd, key, fd); err != nil {
			return &os.PathError{Op: "overlay " + key, Path: path, Err: err}
		}
		return nil
	}
	for _, l := range lowers {
		fd, err := m.detached(l)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
		if err := setFd("lowerdir+", l, fd); err != nil {
			return err
		}
	}
	// upper and work must be on one mount: both are opened below one
	// idmapped copy of the overlay dir.
	rw, err := m.detached(overlayDir)
	if err != nil {
		return err
	}
	fds = append(fds, rw)
	for _, d := range []struct{ key, path string }{{"upperdir", upper}, {"workdir", work}} {
		rel, _ := filepath.Rel(overlayDir, d.path)
		fd, err := unix.Openat(rw, rel, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "openat", Path: d.path, Err: err}
		}
		fds = append(fds, fd)
		if err := setFd(d.key, d.path, fd); err != nil {
			return err
		}
	}
	if len(lowers) > 1 {
		// As mountOverlay: image layers' trusted.overlay.* xattrs other
		// than opaque must not steer lookups.
		for _, k := range []string{"redirect_dir", "metacopy"} {
			if err := unix.FsconfigSetString(fsfd, k, "off"); err != nil {
				return os.NewSyscallError("fsconfig "+k, err)
			}
		}
	}
	// overlayfs does its upper-layer work with the credentials of whoever
	// created the superblock (FSCONFIG_CMD_CREATE, which runs its
	// fill_super), and host root maps to nothing on the idmapped upper
	// (EOVERFLOW, and overlayfs falls back to read-only). So the superblock
	// is created with the pod root's filesystem IDs (setfsuid(2) is per
	// thread: a goroutine locked to its thread until they are restored).
	// The stage1 target lies in the pod directory, where root makes it; an
	// app's lies inside the stage1 overlay, where only the pod's root can.
	asRoot := os.MkdirAll(target, 0o755)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		unix.Setfsgid(m.shift)
		unix.Setfsuid(m.shift)
		// A non-zero fsuid drops the filesystem capabilities from the
		// effective set; overlayfs keeps the creator's credentials and
		// needs them (trusted.* xattrs, work dir), so raise them again.
		raiseEffective()
		err := unix.FsconfigCreate(fsfd)
		if err != nil {
			err = os.NewSyscallError("create overlay", err)
		} else if asRoot != nil {
			err = os.MkdirAll(target, 0o755)
		}
		// Back to root: rkt runs as root, which may always set its fsuid.
		unix.Setfsuid(0)
		unix.Setfsgid(0)
		runtime.UnlockOSThread()
		done <- err
	}()
	if err := <-done; err != nil {
		return err
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("fsmount overlay", err)
	}
	fds = append(fds, mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: target, Err: err}
	}
	return nil
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
