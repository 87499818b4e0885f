package caps

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Apply confines the calling thread, and the program it execs next, to the
// bounding set bounding and gives it the capabilities granted (a subset of
// bounding) with the UID uid (real, effective and saved). See the package
// documentation for the calls that must come before and after.
//
// The steps, in the only order the kernel accepts them (capabilities(7)):
//
//  1. drop every capability not in bounding from the bounding set
//     (PR_CAPBSET_DROP needs CAP_SETPCAP, so before anything else);
//  2. clear the ambient set;
//  3. set PR_SET_KEEPCAPS and call setresuid: without it, leaving UID 0
//     clears the permitted set;
//  4. capset effective = permitted = inheritable = granted;
//  5. clear PR_SET_KEEPCAPS again;
//  6. for a non-root uid, raise every capability of granted in the ambient
//     set (which needs it in permitted and inheritable): execve(2)
//     recomputes a non-root process's permitted set from file capabilities
//     and the ambient set only.
//
// Root needs no ambient set: for UID 0, execve gives permitted = inheritable
// | bounding. A non-root app normally gets granted = 0: it holds no
// capability at all, and the bounding set only limits what file
// capabilities could give it (nothing, under no_new_privs).
func Apply(bounding, granted Set, uid int) error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	bounding &= 1<<(last+1) - 1
	granted &= bounding
	for c := Cap(0); c <= last; c++ {
		if bounding.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop %s from the bounding set: %w", c, os.NewSyscallError("prctl", err))
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", os.NewSyscallError("prctl", err))
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities across setuid: %w", os.NewSyscallError("prctl", err))
	}
	if err := unix.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("set uid %d: %w", uid, os.NewSyscallError("setresuid", err))
	}
	if err := capset(granted); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("reset keep capabilities: %w", os.NewSyscallError("prctl", err))
	}
	if uid == 0 {
		return nil
	}
	for _, c := range granted.Caps() {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s: %w", c, os.NewSyscallError("prctl", err))
		}
	}
	return nil
}

// capset sets the calling thread's effective, permitted and inheritable sets
// to s.
func capset(s Set) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	// Version 3 splits each 64-bit mask into two 32-bit words.
	var data [2]unix.CapUserData
	for i := range data {
		w := uint32(s >> (32 * i))
		data[i] = unix.CapUserData{Effective: w, Permitted: w, Inheritable: w}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set capabilities %s: %w", s, os.NewSyscallError("capset", err))
	}
	return nil
}

// Current returns the calling thread's effective, permitted and inheritable
// sets.
func Current() (effective, permitted, inheritable Set, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, 0, 0, os.NewSyscallError("capget", err)
	}
	for i := range data {
		effective |= Set(data[i].Effective) << (32 * i)
		permitted |= Set(data[i].Permitted) << (32 * i)
		inheritable |= Set(data[i].Inheritable) << (32 * i)
	}
	return effective, permitted, inheritable, nil
}

// lastCap is the highest capability the running kernel supports. It asks
// the kernel with PR_CAPBSET_READ (EINVAL past the last one) rather than
// reading /proc/sys/kernel/cap_last_cap, because Apply runs after the chroot
// into an app's rootfs, where /proc may be absent.
func lastCap() (Cap, error) {
	for c := Cap(0); c < 64; c++ {
		_, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		switch {
		case errors.Is(err, unix.EINVAL) && c > 0:
			return c - 1, nil
		case err != nil:
			return 0, fmt.Errorf("read bounding set: %w", os.NewSyscallError("prctl", err))
		}
	}
	return 63, nil
}
