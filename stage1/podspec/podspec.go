// Package podspec turns a reified appc pod manifest and the apps' rendered
// rootfs into what stage2 runs: each app's argv, environment (appc executor
// rules), user and groups resolved from the image's own /etc/passwd and
// /etc/group, working directory and confinement. Every stage1 flavor uses it,
// so apps see the same environment under namespaces and under KVM.
package podspec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage2"
)

// DefaultPath is appc's PATH when the image sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Input is one app of the pod with where its rootfs is on this side.
type Input struct {
	App *schema.RuntimeApp
	// Image is the app's image manifest (for annotations and defaults).
	Image *schema.ImageManifest
	// HostRootfs is the app's rootfs as stage1 sees it, for reading passwd/group.
	HostRootfs string
	// PodRootfs is the same rootfs as stage2 sees it (/opt/stage2/<app>/rootfs).
	PodRootfs string
	// ExtraEnv is added last (AC_METADATA_URL and such from stage1).
	ExtraEnv []string
}

// Proc builds the process description of one app, resolving its user and
// group in the image's own /etc/passwd and /etc/group under in.HostRootfs.
func Proc(in Input) (stage2.Proc, error) {
	return ProcAs(in, func(user, group string) (User, error) { return ResolveUser(in.HostRootfs, user, group) })
}

// ProcAs is Proc with the user resolved by resolve (given appc's user and
// group fields) instead of by reading the rootfs: a pure planner (stage1/plan)
// passes the databases it was given.
func ProcAs(in Input, resolve func(user, group string) (User, error)) (stage2.Proc, error) {
	app := in.App.App
	name := in.App.Name.String()
	if app == nil {
		return stage2.Proc{}, fmt.Errorf("app %s: no app section in pod manifest", name)
	}
	if len(app.Exec) == 0 {
		return stage2.Proc{}, fmt.Errorf("app %s: no exec given by the image or the pod", name)
	}
	p := stage2.Proc{
		Args:       append([]string(nil), app.Exec...),
		Root:       in.PodRootfs,
		WorkingDir: app.WorkingDirectory,
	}
	if p.WorkingDir == "" {
		p.WorkingDir = "/"
	}
	u, err := resolve(app.User, app.Group)
	if err != nil {
		return stage2.Proc{}, fmt.Errorf("app %s: %w", name, err)
	}
	p.UID, p.GID = u.UID, u.GID
	for _, g := range app.SupplementaryGIDs {
		p.Groups = append(p.Groups, uint32(g))
	}
	p.Env = Environment(name, app.Environment, u, in.ExtraEnv)
	return p, nil
}

// Environment applies appc's rules: PATH (the image's or appc's default),
// the image/pod environment, HOME/USER/LOGNAME/SHELL from passwd unless set,
// AC_APP_NAME and container=rkt, then extra.
func Environment(app string, env types.Environment, u User, extra []string) []string {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	set("PATH", DefaultPath)
	for _, kv := range env {
		set(kv.Name, kv.Value)
	}
	for _, kv := range [...][2]string{{"HOME", u.Home}, {"USER", u.Name}, {"LOGNAME", u.Name}, {"SHELL", u.Shell}} {
		if _, ok := vals[kv[0]]; !ok && kv[1] != "" {
			set(kv[0], kv[1])
		}
	}
	set("AC_APP_NAME", app)
	set("container", "rkt")
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out
}

// User is a resolved app user.
type User struct {
	UID, GID    uint32
	Name        string
	Home, Shell string
}

// ResolveUser resolves appc's user and group fields inside rootfs: a number,
// a name from the image's /etc/passwd or /etc/group, or an absolute path
// meaning the owner of that file in the image.
func ResolveUser(rootfs, user, group string) (User, error) {
	var u User
	if user == "" || group == "" {
		return u, fmt.Errorf("image must set both user and group (got user=%q group=%q)", user, group)
	}
	pw, err := readDB(rootfs, "/etc/passwd")
	if err != nil {
		return u, err
	}
	switch {
	case strings.HasPrefix(user, "/"):
		st, err := statIn(rootfs, user)
		if err != nil {
			return u, fmt.Errorf("user %s: %w", user, err)
		}
		u.UID = st.Uid
	default:
		if n, err := strconv.ParseUint(user, 10, 32); err == nil {
			u.UID = uint32(n)
		} else {
			found := false
			for _, e := range pw {
				if e[0] == user && len(e) >= 4 {
					if n, err := strconv.ParseUint(e[2], 10, 32); err == nil {
						u.UID, found = uint32(n), true
						break
					}
				}
			}
			if !found && user == "root" {
				// root is uid 0 whatever the image's /etc/passwd says.
				u.UID, found = 0, true
			}
			if !found {
				return u, fmt.Errorf("user %q not found in the image's /etc/passwd", user)
			}
		}
	}
	for _, e := range pw {
		if len(e) >= 7 && e[2] == strconv.FormatUint(uint64(u.UID), 10) {
			u.Name, u.Home, u.Shell = e[0], e[5], e[6]
			break
		}
	}
	if u.Name == "" && u.UID == 0 {
		u.Name, u.Home = "root", "/root"
	}
	switch {
	case strings.HasPrefix(group, "/"):
		st, err := statIn(rootfs, group)
		if err != nil {
			return u, fmt.Errorf("group %s: %w", group, err)
		}
		u.GID = st.Gid
	default:
		if n, err := strconv.ParseUint(group, 10, 32); err == nil {
			u.GID = uint32(n)
		} else {
			gr, err := readDB(rootfs, "/etc/group")
			if err != nil {
				return u, err
			}
			found := false
			for _, e := range gr {
				if e[0] == group && len(e) >= 3 {
					if n, err := strconv.ParseUint(e[2], 10, 32); err == nil {
						u.GID, found = uint32(n), true
						break
					}
				}
			}
			if !found && group == "root" {
				u.GID, found = 0, true
			}
			if !found {
				return u, fmt.Errorf("group %q not found in the image's /etc/group", group)
			}
		}
	}
	return u, nil
}

// statIn stats path inside rootfs, resolving symlinks as if rootfs were
// "/" (openat2 RESOLVE_IN_ROOT), so nothing outside it is reached.
func statIn(rootfs, path string) (*unix.Stat_t, error) {
	fd, err := openIn(rootfs, path, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	return &st, nil
}

// openIn opens path inside rootfs with openat2(2) RESOLVE_IN_ROOT: ".." and
// absolute symlinks stay inside rootfs. Kernels before 5.6 lack openat2;
// there SecureJoin resolves the path first (racy against a concurrent
// rename inside rootfs, which a not yet started image cannot do).
func openIn(rootfs, path string, flags int) (int, error) {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(root)
	how := unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := eintr.Retry2(func() (int, error) { return unix.Openat2(root, path, &how) })
	if err == unix.ENOSYS {
		full, jerr := securejoin.SecureJoin(rootfs, path)
		if jerr != nil {
			return -1, jerr
		}
		fd, err = unix.Open(full, flags, 0)
	}
	if err != nil {
		return -1, &os.PathError{Op: "openat2", Path: path, Err: err}
	}
	return fd, nil
}

// maxDB bounds the size of the image's /etc/passwd and /etc/group.
const maxDB = 1 << 20

// readDB reads a colon-separated database file (/etc/passwd, /etc/group)
// of the image. A missing file is empty. The file must be a regular file
// of at most maxDB bytes, not a symlink: it is opened inside rootfs with
// O_NOFOLLOW and O_NONBLOCK, so that a FIFO, a device or a link cannot
// block stage1 or read something else, and is checked with fstat.
func readDB(rootfs, path string) ([][]string, error) {
	fd, err := openIn(rootfs, path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, nil
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("image's %s is a symlink; want a regular file", path)
	case err != nil:
		return nil, fmt.Errorf("image's %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("image's %s is not a regular file (%s)", path, fileType(st.Mode))
	}
	if st.Size > maxDB {
		return nil, fmt.Errorf("image's %s is %d bytes, more than %d", path, st.Size, maxDB)
	}
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, maxDB))
	sc.Buffer(nil, maxDB)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("image's %s: %w", path, err)
	}
	return out, nil
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	}
	return fmt.Sprintf("file type %#o", mode&unix.S_IFMT)
}

// AppRootfs is where stage2 finds an app's rootfs inside the pod.
func AppRootfs(app string) string { return layout.AppRootfs(app) }
