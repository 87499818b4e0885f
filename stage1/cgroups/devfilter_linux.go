package cgroups

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The cgroup v2 device policy is an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the pod's cgroup; it sees
// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; },
// access_type = access bits << 16 | device type, and returns 1 to allow.
const (
	bpfProgLoad           = 5
	bpfProgAttach         = 8
	bpfProgTypeCgroupDev  = 15
	bpfAttachCgroupDevice = 6
	bpfFAllowMulti        = 2

	devcgDevBlock = 1
	devcgDevChar  = 2
	devcgAccMknod = 1
	devcgAccRead  = 2
	devcgAccWrite = 4
)

// eBPF instruction encoding (linux/bpf.h).
type insn struct {
	code uint8
	regs uint8 // dst | src<<4
	off  int16
	imm  int32
}

const (
	bpfLDX  = 0x01
	bpfALU  = 0x04
	bpfJMP  = 0x05
	bpfW    = 0x00
	bpfMEM  = 0x60
	bpfK    = 0x00
	bpfX    = 0x08
	bpfAND  = 0x50
	bpfRSH  = 0x70
	bpfMOV  = 0xb0
	bpfJNE  = 0x50
	bpfEXIT = 0x90
)

func ldxw(dst, src uint8, off int16) insn { return insn{bpfLDX | bpfMEM | bpfW, dst | src<<4, off, 0} }
func movImm(dst uint8, imm int32) insn    { return insn{bpfALU | bpfMOV | bpfK, dst, 0, imm} }
func movReg(dst, src uint8) insn          { return insn{bpfALU | bpfMOV | bpfX, dst | src<<4, 0, 0} }
func andImm(dst uint8, imm int32) insn    { return insn{bpfALU | bpfAND | bpfK, dst, 0, imm} }
func rshImm(dst uint8, imm int32) insn    { return insn{bpfALU | bpfRSH | bpfK, dst, 0, imm} }
func jneImm(dst uint8, imm int32, off int16) insn {
	return insn{bpfJMP | bpfJNE | bpfK, dst, off, imm}
}
func exit() insn { return insn{bpfJMP | bpfEXIT, 0, 0, 0} }

// devRule allows access (a subset of read/write/mknod) to char or block
// devices major:minor; -1 is a wildcard.
type devRule struct {
	typ          int32
	major, minor int32
	access       int32
}

// standardDevices mirrors allowedDevices (v1): read, write and mknod.
var standardDevices = []devRule{
	{devcgDevChar, 1, 3, devcgAccMknod | devcgAccRead | devcgAccWrite},
	{devcgDevChar, 1, 5, devcgAccMknod | devcgAccRead | devcgAccWrite},
	{devcgDevChar, 1, 7, devcgAccMknod | devcgAccRead | devcgAccWrite},
	{devcgDevChar, 1, 8, devcgAccMknod | devcgAccRead | devcgAccWrite},
	{devcgDevChar, 1, 9, devcgAccMknod | devcgAccRead | devcgAccWrite},
	{devcgDevChar, 5, 0, devcgAccMknod | devcgAccRead | devcgAccWrite},
	{devcgDevChar, 5, 1, devcgAccMknod | devcgAccRead | devcgAccWrite},
	{devcgDevChar, 5, 2, devcgAccMknod | devcgAccRead | devcgAccWrite},
	{devcgDevChar, 136, -1, devcgAccMknod | devcgAccRead | devcgAccWrite},
}

// deviceProgram builds the filter: registers r2 = type, r3 = access,
// r4 = major, r5 = minor; each rule either allows (return 1) or falls
// through to the next; the end denies (return 0).
func deviceProgram(rules []devRule) []insn {
	p := []insn{
		ldxw(2, 1, 0), movReg(3, 2), rshImm(3, 16), andImm(2, 0xffff),
		ldxw(4, 1, 4), ldxw(5, 1, 8),
	}
	for _, r := range rules {
		var block []insn
		block = append(block, jneImm(2, r.typ, 0))
		if r.major >= 0 {
			block = append(block, jneImm(4, r.major, 0))
		}
		if r.minor >= 0 {
			block = append(block, jneImm(5, r.minor, 0))
		}
		// access must be a subset of r.access: (access & ^allowed) == 0
		block = append(block, movReg(0, 3), andImm(0, ^r.access&0xffff), jneImm(0, 0, 0), movImm(0, 1), exit())
		// Patch the jumps to skip to the end of this block.
		for i := range block {
			if block[i].code == bpfJMP|bpfJNE|bpfK {
				block[i].off = int16(len(block) - i - 1)
			}
		}
		p = append(p, block...)
	}
	return append(p, movImm(0, 0), exit())
}

func encode(p []insn) []byte {
	b := make([]byte, 8*len(p))
	for i, in := range p {
		o := b[8*i:]
		o[0] = in.code
		o[1] = in.regs
		binary.LittleEndian.PutUint16(o[2:], uint16(in.off))
		binary.LittleEndian.PutUint32(o[4:], uint32(in.imm))
	}
	return b
}

// attachDeviceFilter loads the device program and attaches it to the cgroup
// directory dir, where it applies to every descendant.
func attachDeviceFilter(dir string) error {
	code := encode(deviceProgram(standardDevices))
	license := []byte("GPL\x00")
	logBuf := make([]byte, 4096)
	attr := struct {
		progType    uint32
		insnCnt     uint32
		insns       uint64
		license     uint64
		logLevel    uint32
		logSize     uint32
		logBuf      uint64
		kernVersion uint32
		progFlags   uint32
	}{
		progType: bpfProgTypeCgroupDev, insnCnt: uint32(len(code) / 8),
		insns: uint64(uintptr(unsafe.Pointer(&code[0]))), license: uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1, logSize: uint32(len(logBuf)), logBuf: uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgLoad, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if errno != 0 {
		return fmt.Errorf("load device filter: %w (verifier: %s)", errno, cstring(logBuf))
	}
	defer unix.Close(int(fd))
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(cg)
	att := struct {
		targetFd, attachBpfFd, attachType, attachFlags uint32
	}{uint32(cg), uint32(fd), bpfAttachCgroupDevice, bpfFAllowMulti}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgAttach, uintptr(unsafe.Pointer(&att)), unsafe.Sizeof(att)); errno != 0 {
		return fmt.Errorf("attach device filter to %s: %w", dir, errno)
	}
	return nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
