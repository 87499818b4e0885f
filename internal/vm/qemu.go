package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// KernelEnv names a kernel image to use instead of the newest /boot/vmlinuz-*.
const KernelEnv = "RKT_VM_KERNEL"

// Kernel is a kernel image and where its modules and config are.
type Kernel struct {
	Image   string
	Version string
	// ModDir is /lib/modules/<Version>.
	ModDir string
	// Config is /boot/config-<Version>, when present.
	Config string
}

// ErrNoKernel is returned by [FindKernel] when there is no kernel image.
var ErrNoKernel = errors.New("no kernel image")

// FindKernel returns the kernel named by $RKT_VM_KERNEL, or else the newest
// /boot/vmlinuz-* (by version).
func FindKernel() (*Kernel, error) {
	img := os.Getenv(KernelEnv)
	if img == "" {
		imgs, _ := filepath.Glob("/boot/vmlinuz-*")
		if len(imgs) == 0 {
			return nil, fmt.Errorf("%w in /boot", ErrNoKernel)
		}
		slices.SortFunc(imgs, func(a, b string) int { return compareVersions(a, b) })
		img = imgs[len(imgs)-1]
	}
	if _, err := os.Stat(img); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoKernel, err)
	}
	v := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
	k := &Kernel{Image: img, Version: v, ModDir: filepath.Join("/lib/modules", v)}
	if c := filepath.Join(filepath.Dir(img), "config-"+v); fileExists(c) {
		k.Config = c
	}
	return k, nil
}

// ConfigValue returns the value of option (for example "CONFIG_OVERLAY_FS")
// in the kernel's config: "y", "m", or "" when unset or unknown.
func (k *Kernel) ConfigValue(option string) string {
	if k.Config == "" {
		return ""
	}
	b, err := os.ReadFile(k.Config)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), option+"="); ok {
			return v
		}
	}
	return ""
}

// compareVersions orders strings by their runs of digits as numbers
// ("6.1.0-9" < "6.1.0-10").
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		if da != "" && db != "" {
			na, _ := strconv.ParseUint(da, 10, 64)
			nb, _ := strconv.ParseUint(db, 10, 64)
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// File is one file of an initramfs: a symbolic link to Symlink, the host
// file Src, or Data.
type File struct {
	// Path is the absolute path inside the initramfs.
	Path    string
	Symlink string
	Src     string
	Data    []byte
	Mode    fs.FileMode
}

// baseDirs are made in every initramfs: mount points of the init and the
// directories rkt expects.
var baseDirs = []string{"/bin", "/dev", "/etc", "/lib/modules", "/proc", "/root", "/run", "/sys", "/tmp", "/var/lib/rkt"}

// WriteInitramfs writes a gzip'd newc cpio archive to dst holding files,
// their parent directories, the base directories and a /dev/console node
// (which the kernel opens as the init's stdio).
func WriteInitramfs(dst string, files []File) error {
	return writeInitramfs(dst, files, true)
}

// WriteInitramfsUncompressed writes the archive of [WriteInitramfs]
// without compression: larger on disk, but the guest kernel unpacks it
// without inflating it first, which under TCG costs a noticeable part of
// the boot.
func WriteInitramfsUncompressed(dst string, files []File) error {
	return writeInitramfs(dst, files, false)
}

func writeInitramfs(dst string, files []File, compress bool) (err error) {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	var w io.Writer = bw
	var zw *gzip.Writer
	if compress {
		// Speed over size: the image lives for one boot.
		if zw, err = gzip.NewWriterLevel(bw, gzip.BestSpeed); err != nil {
			return err
		}
		w = zw
	}
	cw := NewCPIOWriter(w)
	dirs := map[string]bool{"/": true}
	var mkdirs func(d string) error
	mkdirs = func(d string) error {
		if dirs[d] {
			return nil
		}
		if err := mkdirs(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return cw.Dir(d, 0o755)
	}
	for _, d := range baseDirs {
		if err := mkdirs(d); err != nil {
			return err
		}
	}
	if err := cw.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	for _, fl := range files {
		if !path.IsAbs(fl.Path) {
			return fmt.Errorf("initramfs file %q: path is not absolute", fl.Path)
		}
		if err := mkdirs(path.Dir(path.Clean(fl.Path))); err != nil {
			return err
		}
		if fl.Symlink != "" {
			if err := cw.Symlink(fl.Path, fl.Symlink); err != nil {
				return err
			}
			continue
		}
		if fl.Src == "" {
			if err := cw.File(fl.Path, fl.Mode, bytes.NewReader(fl.Data), int64(len(fl.Data))); err != nil {
				return err
			}
			continue
		}
		if err := copyInto(cw, fl); err != nil {
			return err
		}
	}
	if err := cw.Close(); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func copyInto(cw *CPIOWriter, fl File) error {
	src, err := os.Open(fl.Src)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("initramfs file %s: %s is not a regular file", fl.Path, fl.Src)
	}
	mode := fl.Mode
	if mode == 0 {
		mode = fi.Mode().Perm()
	}
	return cw.File(fl.Path, mode, src, fi.Size())
}

// Machine is one qemu run.
type Machine struct {
	QEMU   string // qemu-system-x86_64
	Kernel string
	Initrd string
	// MemoryMB and CPUs default to 1024 and 2.
	MemoryMB, CPUs int
	// Cmdline is the kernel command line.
	Cmdline string
	// Accel is the qemu accelerator: "kvm" (the default) or "tcg".
	Accel string
	// Console, if set, gets a live copy of the serial console (qemu's
	// stdout and stderr).
	Console io.Writer
	// Devices are more qemu arguments: devices and their backends.
	Devices []string
}

// AccelEnv forces the accelerator [ChooseAccel] picks: "kvm" or "tcg".
const AccelEnv = "RKT_STAGE1_KVM_ACCEL"

// Accelerators.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// ChooseAccel returns the accelerator to boot k with, and why: "kvm" when
// /dev/kvm can be opened and is real hardware virtualization, else "tcg"
// (qemu's emulator: slower, same guest). $RKT_STAGE1_KVM_ACCEL overrides the
// choice; any other value than kvm or tcg is an error.
//
// /dev/kvm provided by kvm_pvm (PVM, the pagetable-based nested
// virtualization of some cloud sandboxes, used where the CPU has no VMX/SVM)
// only runs guest kernels built for it (CONFIG_PVM_GUEST): a distribution
// kernel hangs right after decompression, so it gets tcg.
func ChooseAccel(k *Kernel) (accel, why string, err error) {
	switch a := os.Getenv(AccelEnv); a {
	case AccelKVM, AccelTCG:
		return a, "$" + AccelEnv, nil
	case "":
	default:
		return "", "", fmt.Errorf("$%s=%q: want %s or %s", AccelEnv, a, AccelKVM, AccelTCG)
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return AccelTCG, fmt.Sprintf("/dev/kvm unusable (%v)", err), nil
	}
	f.Close()
	if pvmLoaded() && k.ConfigValue("CONFIG_PVM_GUEST") != "y" {
		return AccelTCG, "/dev/kvm is kvm_pvm (PVM), which only boots CONFIG_PVM_GUEST kernels, and " + k.Image + " is not one", nil
	}
	return AccelKVM, "/dev/kvm", nil
}

// pvmLoaded says whether the kvm_pvm module provides /dev/kvm.
func pvmLoaded() bool {
	if fileExists("/sys/module/kvm_pvm") {
		return true
	}
	b, err := os.ReadFile("/proc/modules")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "kvm_pvm ") {
			return true
		}
	}
	return false
}

// QEMUEnv names the qemu binary to use instead of qemu-system-x86_64 on PATH.
const QEMUEnv = "RKT_STAGE1_KVM_QEMU"

// QEMUPackage is the Debian package that provides qemu-system-x86_64.
const QEMUPackage = "qemu-system-x86"

// ErrNoQEMU is returned by [FindQEMU] when there is no qemu.
var ErrNoQEMU = errors.New("qemu-system-x86_64 not found")

// FindQEMU returns $RKT_STAGE1_KVM_QEMU, or qemu-system-x86_64 on PATH.
func FindQEMU() (string, error) {
	if q := os.Getenv(QEMUEnv); q != "" {
		if _, err := exec.LookPath(q); err != nil {
			return "", fmt.Errorf("%w: $%s=%s: %w (install package %s)", ErrNoQEMU, QEMUEnv, q, err, QEMUPackage)
		}
		return q, nil
	}
	q, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", fmt.Errorf("%w on PATH: install package %s", ErrNoQEMU, QEMUPackage)
	}
	return q, nil
}

// Args returns qemu's arguments for the machine: no default devices, the
// serial console on stdio, the extra devices last.
func (m *Machine) Args() ([]string, error) {
	mem, cpus := m.MemoryMB, m.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 2
	}
	var accel []string
	switch m.Accel {
	case "", AccelKVM:
		accel = []string{"-accel", "kvm", "-cpu", "host"}
	case AccelTCG:
		accel = []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
	default:
		return nil, fmt.Errorf("qemu: unknown accelerator %q (want kvm or tcg)", m.Accel)
	}
	args := append(accel, "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		// No default devices (VGA, NIC with its option ROM, ...), no
		// monitor: the serial port is the console.
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
		// A guest reboot (or kernel panic with panic=-1) ends qemu.
		"-no-reboot",
		"-kernel", m.Kernel, "-initrd", m.Initrd, "-append", m.Cmdline)
	return append(args, m.Devices...), nil
}

// Command returns the qemu command for the machine, with the console on
// Console. A cancelled ctx sends qemu SIGTERM, then SIGKILL after 5s.
func (m *Machine) Command(ctx context.Context) (*exec.Cmd, error) {
	args, err := m.Args()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, m.QEMU, args...)
	cmd.Stdout = m.Console
	cmd.Stderr = m.Console
	cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec.Cmd and
// a reader after Wait.
type syncBuffer struct {
	// mu guards b.
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// Run boots the machine and waits for it to power off. It returns the
// console output, also when it fails: when ctx ends first, qemu is stopped
// and the error wraps ctx's.
func (m *Machine) Run(ctx context.Context) ([]byte, error) {
	var out syncBuffer
	mm := *m
	mm.Console = &out
	if m.Console != nil {
		mm.Console = io.MultiWriter(&out, m.Console)
	}
	cmd, err := mm.Command(ctx)
	if err != nil {
		return nil, err
	}
	err = cmd.Run()
	if ctx.Err() != nil {
		return out.Bytes(), fmt.Errorf("qemu: %w", context.Cause(ctx))
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("qemu: %w", err)
	}
	return out.Bytes(), nil
}
