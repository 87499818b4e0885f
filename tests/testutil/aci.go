package testutil

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/manifests"
)

// aciModTime is the mtime of every entry, so that the same options give the
// same bytes and so the same image ID.
var aciModTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultApplets are the busybox applets WithBusybox links when given none.
var DefaultApplets = []string{
	"sh", "true", "false", "echo", "sleep", "cat", "ls", "id", "env", "pwd", "hostname",
	"mkdir", "rmdir", "touch", "rm", "ln", "cp", "mv", "chmod", "stat", "test", "[",
	"grep", "head", "tail", "wc", "ps", "kill", "mount", "umount", "printf", "whoami", "readlink",
}

type nameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type eventHandler struct {
	Name string   `json:"name"`
	Exec []string `json:"exec"`
}

type mountPoint struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

type port struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Port     uint   `json:"port"`
	Count    uint   `json:"count"`
}

type dependency struct {
	ImageName string      `json:"imageName"`
	ImageID   string      `json:"imageID,omitempty"`
	Labels    []nameValue `json:"labels,omitempty"`
}

// appJSON and imageJSON are the appc image manifest as written, before
// manifests.DecodeImage validates it; isolators stay raw so that tests can
// use names the appc library does not know.
type appJSON struct {
	Exec              []string          `json:"exec,omitempty"`
	User              string            `json:"user"`
	Group             string            `json:"group"`
	SupplementaryGIDs []int             `json:"supplementaryGIDs,omitempty"`
	EventHandlers     []eventHandler    `json:"eventHandlers,omitempty"`
	WorkingDirectory  string            `json:"workingDirectory,omitempty"`
	Environment       []nameValue       `json:"environment,omitempty"`
	Isolators         []json.RawMessage `json:"isolators,omitempty"`
	MountPoints       []mountPoint      `json:"mountPoints,omitempty"`
	Ports             []port            `json:"ports,omitempty"`
}

type imageJSON struct {
	ACKind        string       `json:"acKind"`
	ACVersion     string       `json:"acVersion"`
	Name          string       `json:"name"`
	Labels        []nameValue  `json:"labels,omitempty"`
	App           *appJSON     `json:"app,omitempty"`
	Annotations   []nameValue  `json:"annotations,omitempty"`
	Dependencies  []dependency `json:"dependencies,omitempty"`
	PathWhitelist []string     `json:"pathWhitelist,omitempty"`
}

// aciEntry is one thing to put into the rootfs.
type aciEntry struct {
	path     string // absolute, inside the rootfs
	content  []byte
	hostPath string // copy this host file (content ignored)
	inspect  bool   // copy BuildInspect's binary
	busybox  bool   // copy the host's static busybox
	symlink  string // make a symlink to this target
	dir      bool
	fifo     bool // make a named pipe
	mode     os.FileMode
	uid, gid int
}

// deviceEntry is a device node, written straight into the tar (making one
// on disk first would need CAP_MKNOD for every test that builds an ACI).
type deviceEntry struct {
	path         string
	char         bool
	major, minor int64
	mode         os.FileMode
	uid, gid     int
}

type aciSpec struct {
	im      imageJSON
	execSet bool
	noApp   bool
	gzip    bool
	entries []aciEntry
	devices []deviceEntry
	mutate  []func(*schema.ImageManifest)
}

// ACIOption changes the ACI that NewACI builds.
type ACIOption func(*aciSpec)

// WithExec sets app.exec.
func WithExec(args ...string) ACIOption {
	return func(s *aciSpec) { s.im.App.Exec, s.execSet = args, true }
}

// WithUser sets app.user and app.group (default "0" and "0").
func WithUser(user, group string) ACIOption {
	return func(s *aciSpec) { s.im.App.User, s.im.App.Group = user, group }
}

// WithSupplementaryGIDs sets app.supplementaryGIDs.
func WithSupplementaryGIDs(gids ...int) ACIOption {
	return func(s *aciSpec) { s.im.App.SupplementaryGIDs = gids }
}

// WithWorkingDir sets app.workingDirectory.
func WithWorkingDir(dir string) ACIOption {
	return func(s *aciSpec) { s.im.App.WorkingDirectory = dir }
}

// WithEnv adds an app.environment entry.
func WithEnv(name, value string) ACIOption {
	return func(s *aciSpec) { s.im.App.Environment = append(s.im.App.Environment, nameValue{name, value}) }
}

// WithMountPoint adds an app.mountPoints entry.
func WithMountPoint(name, path string, readOnly bool) ACIOption {
	return func(s *aciSpec) {
		s.im.App.MountPoints = append(s.im.App.MountPoints, mountPoint{name, path, readOnly})
	}
}

// WithPort adds an app.ports entry with count 1.
func WithPort(name, protocol string, p uint) ACIOption {
	return func(s *aciSpec) { s.im.App.Ports = append(s.im.App.Ports, port{name, protocol, p, 1}) }
}

// WithIsolator adds an isolator; value is its JSON value, for example
// WithIsolator("resource/memory", `{"limit": "100M"}`). Names unknown to the
// appc library are kept as they are.
func WithIsolator(name, value string) ACIOption {
	return func(s *aciSpec) {
		n, _ := json.Marshal(name)
		// An invalid value makes NewACI fail when it marshals the manifest.
		raw := json.RawMessage(fmt.Sprintf(`{"name":%s,"value":%s}`, n, value))
		s.im.App.Isolators = append(s.im.App.Isolators, raw)
	}
}

// WithEventHandler adds an app.eventHandlers entry ("pre-start", "post-stop").
func WithEventHandler(name string, exec ...string) ACIOption {
	return func(s *aciSpec) { s.im.App.EventHandlers = append(s.im.App.EventHandlers, eventHandler{name, exec}) }
}

// WithAnnotation sets an annotation, replacing one of the same name.
func WithAnnotation(name, value string) ACIOption {
	return func(s *aciSpec) { s.im.Annotations = setNameValue(s.im.Annotations, name, value) }
}

// WithLabel sets a label, replacing one of the same name (os and arch are
// set by default to linux and the test's architecture).
func WithLabel(name, value string) ACIOption {
	return func(s *aciSpec) { s.im.Labels = setNameValue(s.im.Labels, name, value) }
}

// WithDependency adds a dependency on imageName; imageID ("sha512-...") and
// labels are optional.
func WithDependency(imageName, imageID string, labels map[string]string) ACIOption {
	return func(s *aciSpec) {
		d := dependency{ImageName: imageName, ImageID: imageID}
		for k, v := range labels {
			d.Labels = append(d.Labels, nameValue{k, v})
		}
		// map order is random: keep the manifest reproducible
		sortNameValues(d.Labels)
		s.im.Dependencies = append(s.im.Dependencies, d)
	}
}

// WithPathWhitelist sets pathWhitelist.
func WithPathWhitelist(paths ...string) ACIOption {
	return func(s *aciSpec) { s.im.PathWhitelist = paths }
}

// WithoutApp builds an image without an app section (a dependency or an
// empty image).
func WithoutApp() ACIOption {
	return func(s *aciSpec) { s.noApp = true }
}

// WithFile adds a regular file owned by root. Parent directories are made
// with mode 0755. In modes here, setuid, setgid and sticky may be given as
// octal (0o4755) or as os.ModeSetuid and the like.
func WithFile(path, content string, mode os.FileMode) ACIOption {
	return WithFileOwned(path, content, mode, 0, 0)
}

// WithFileOwned adds a regular file with the given owner.
func WithFileOwned(path, content string, mode os.FileMode, uid, gid int) ACIOption {
	return func(s *aciSpec) {
		s.entries = append(s.entries, aciEntry{path: path, content: []byte(content), mode: mode, uid: uid, gid: gid})
	}
}

// WithDir adds a directory with the given mode and owner.
func WithDir(path string, mode os.FileMode, uid, gid int) ACIOption {
	return func(s *aciSpec) {
		s.entries = append(s.entries, aciEntry{path: path, dir: true, mode: mode, uid: uid, gid: gid})
	}
}

// WithSymlink adds a symlink at path pointing to target.
func WithSymlink(path, target string) ACIOption {
	return func(s *aciSpec) { s.entries = append(s.entries, aciEntry{path: path, symlink: target}) }
}

// WithFIFO adds a named pipe at path (hostile images: a reader that opens
// it without O_NONBLOCK blocks until a writer comes).
func WithFIFO(path string) ACIOption {
	return func(s *aciSpec) { s.entries = append(s.entries, aciEntry{path: path, fifo: true, mode: 0o644}) }
}

// WithHostFile copies a file of the host (for example a static binary) to
// aciPath, keeping its permission bits.
func WithHostFile(hostPath, aciPath string) ACIOption {
	return func(s *aciSpec) { s.entries = append(s.entries, aciEntry{path: aciPath, hostPath: hostPath}) }
}

// WithInspect copies the tests/inspect binary to /inspect and, unless
// WithExec is given, makes it the app: exec ["/inspect"].
func WithInspect() ACIOption {
	return func(s *aciSpec) {
		s.entries = append(s.entries, aciEntry{path: "/inspect", inspect: true})
		if !s.execSet {
			s.im.App.Exec = []string{"/inspect"}
		}
	}
}

// WithInspectCopy copies the tests/inspect binary to path with mode, which
// may carry setuid and setgid bits (0o4755); owner root. Unlike WithInspect
// it does not make it the app.
func WithInspectCopy(path string, mode os.FileMode) ACIOption {
	return func(s *aciSpec) {
		s.entries = append(s.entries, aciEntry{path: path, inspect: true, mode: mode})
	}
}

// WithDevice adds a character (char) or block device node with the given
// numbers, permission bits and owner, for example
// WithDevice("/null", true, 1, 3, 0o666, 0, 0).
func WithDevice(path string, char bool, major, minor int64, mode os.FileMode, uid, gid int) ACIOption {
	return func(s *aciSpec) {
		s.devices = append(s.devices, deviceEntry{path: path, char: char, major: major, minor: minor, mode: mode, uid: uid, gid: gid})
	}
}

// WithBusybox copies the host's static busybox (Debian's busybox-static) to
// /bin/busybox with symlinks /bin/<applet> for the applets given, or for
// DefaultApplets. The test is skipped when no static busybox is installed.
func WithBusybox(applets ...string) ACIOption {
	if len(applets) == 0 {
		applets = DefaultApplets
	}
	return func(s *aciSpec) {
		s.entries = append(s.entries, aciEntry{path: "/bin/busybox", busybox: true})
		for _, a := range applets {
			s.entries = append(s.entries, aciEntry{path: "/bin/" + a, symlink: "busybox"})
		}
	}
}

// WithPasswd writes /etc/passwd.
func WithPasswd(content string) ACIOption { return WithFile("/etc/passwd", content, 0o644) }

// WithGroup writes /etc/group.
func WithGroup(content string) ACIOption { return WithFile("/etc/group", content, 0o644) }

// WithGzip compresses the ACI with gzip.
func WithGzip() ACIOption {
	return func(s *aciSpec) { s.gzip = true }
}

// WithManifest runs f on the decoded manifest before it is written, for
// changes the other options do not cover.
func WithManifest(f func(*schema.ImageManifest)) ACIOption {
	return func(s *aciSpec) { s.mutate = append(s.mutate, f) }
}

// appcArch maps GOARCH to appc's arch label (appc spec, "arch" label).
var appcArch = map[string]string{
	"amd64": "amd64", "386": "i386", "arm64": "aarch64", "arm": "armv7l",
	"ppc64": "ppc64", "ppc64le": "ppc64le", "s390x": "s390x",
}

// NewACI builds an uncompressed (or, WithGzip, gzip) ACI named name in a
// temporary directory of the test and returns its path. The defaults are an
// app run as user 0, group 0, with no exec, and labels os=linux,
// arch=<this machine>. Every entry is owned by root unless an option says
// otherwise, and has a fixed mtime, so the same options give the same image
// ID.
func NewACI(t testing.TB, name string, opts ...ACIOption) string {
	t.Helper()
	s := &aciSpec{im: imageJSON{
		ACKind: "ImageManifest", ACVersion: "0.8.11", Name: name,
		Labels: []nameValue{{"os", "linux"}, {"arch", appcArch[runtime.GOARCH]}},
		App:    &appJSON{User: "0", Group: "0"},
	}}
	for _, o := range opts {
		o(s)
	}
	if s.noApp {
		s.im.App = nil
	}
	mb, err := json.Marshal(s.im)
	if err != nil {
		t.Fatalf("image manifest of %s: %v", name, err)
	}
	im, err := manifests.DecodeImage(mb)
	if err != nil {
		t.Fatalf("image manifest of %s: %v\n%s", name, err, mb)
	}
	for _, f := range s.mutate {
		f(im)
	}

	work := t.TempDir()
	rootfs := filepath.Join(work, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	owners := map[string][2]int{}
	for _, e := range s.entries {
		if err := addEntry(t, rootfs, e); err != nil {
			t.Fatalf("ACI %s: %v", name, err)
		}
		owners["rootfs"+path.Clean("/"+e.path)] = [2]int{e.uid, e.gid}
	}

	var raw bytes.Buffer
	if err := manifests.WriteACI(&raw, im, rootfs, manifests.BuildOptions{ModTime: &aciModTime, OwnerRoot: true}); err != nil {
		t.Fatalf("write ACI %s: %v", name, err)
	}
	out := filepath.Join(work, strings.NewReplacer("/", "_", ":", "_").Replace(name)+".aci")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	var w io.Writer = bw
	var gz *gzip.Writer
	if s.gzip {
		gz = gzip.NewWriter(bw)
		w = gz
	}
	if err := setOwners(w, &raw, owners, s.devices); err != nil {
		t.Fatalf("write ACI %s: %v", name, err)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func addEntry(t testing.TB, rootfs string, e aciEntry) error {
	t.Helper()
	rel := path.Clean("/" + e.path)
	if rel == "/" {
		return fmt.Errorf("entry %q: not a path below /", e.path)
	}
	dst := filepath.Join(rootfs, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	switch {
	case e.symlink != "":
		return os.Symlink(e.symlink, dst)
	case e.fifo:
		if err := unix.Mkfifo(dst, 0o600); err != nil {
			return &os.PathError{Op: "mkfifo", Path: dst, Err: err}
		}
		return chmod(dst, e.mode)
	case e.dir:
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		return chmod(dst, e.mode)
	}
	content, mode := e.content, e.mode
	src := e.hostPath
	if e.inspect {
		src = BuildInspect(t)
	}
	if e.busybox {
		src = staticBusybox(t)
	}
	if src != "" {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		content, mode = b, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
		if e.mode != 0 {
			mode = e.mode
		}
	}
	if err := os.WriteFile(dst, content, 0o600); err != nil {
		return err
	}
	// Chmod, not the mode of WriteFile: the umask must not apply.
	return chmod(dst, mode)
}

// chmod sets m's permission bits and its setuid, setgid and sticky bits,
// given either as os.Mode* flags or as the octal 0o7000 bits.
func chmod(p string, m os.FileMode) error {
	u := uint32(m & 0o7777)
	if m&os.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	if err := unix.Chmod(p, u); err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	return nil
}

// staticBusybox returns the host's busybox, skipping the test when it is
// missing or dynamically linked (a pod has no libc for it).
func staticBusybox(t testing.TB) string {
	t.Helper()
	p := RequireCommand(t, "busybox")
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("busybox %s: %v", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Skipf("busybox at %s is dynamically linked; run: apt-get install busybox-static", p)
		}
	}
	return p
}

// setOwners copies the tar stream in to w, giving the entries named in
// owners their uid and gid.
func setOwners(w io.Writer, in io.Reader, owners map[string][2]int, devices []deviceEntry) error {
	tr := tar.NewReader(in)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if o, ok := owners[strings.TrimSuffix(h.Name, "/")]; ok {
			h.Uid, h.Gid = o[0], o[1]
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	for _, d := range devices {
		h := &tar.Header{
			Name: "rootfs" + path.Clean("/"+d.path), Typeflag: tar.TypeBlock,
			Mode: int64(d.mode.Perm()), Uid: d.uid, Gid: d.gid,
			Devmajor: d.major, Devminor: d.minor, ModTime: aciModTime, Format: tar.FormatPAX,
		}
		if d.char {
			h.Typeflag = tar.TypeChar
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	return tw.Close()
}

// ImageID returns the appc image ID of an ACI file: "sha512-" and the hex
// SHA-512 of the uncompressed tar. Only uncompressed and gzip ACIs are read.
func ImageID(t testing.TB, aciPath string) string {
	t.Helper()
	f, err := os.Open(aciPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			t.Fatalf("%s: %v", aciPath, err)
		}
		r = gz
	}
	h := sha512.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("%s: %v", aciPath, err)
	}
	return "sha512-" + hex.EncodeToString(h.Sum(nil))
}

func setNameValue(l []nameValue, name, value string) []nameValue {
	for i := range l {
		if l[i].Name == name {
			l[i].Value = value
			return l
		}
	}
	return append(l, nameValue{name, value})
}

func sortNameValues(l []nameValue) {
	slices.SortFunc(l, func(a, b nameValue) int { return strings.Compare(a.Name, b.Name) })
}
