package vm

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
)

// ErrNotBzImage is returned by [KernelELF] for a file that is not a
// bzImage with a protected-mode payload (boot protocol 2.08 or later).
var ErrNotBzImage = errors.New("not a bzImage")

// Offsets in the bzImage's real-mode header (the kernel's boot protocol,
// Documentation/arch/x86/boot.rst).
const (
	offSetupSects    = 0x1f1
	offHeaderMagic   = 0x202 // "HdrS"
	offVersion       = 0x206
	offPayloadOffset = 0x248 // from the start of the protected-mode code
	offPayloadLength = 0x24c
	// minPayloadVersion is the first protocol with payload_offset.
	minPayloadVersion = 0x0208
)

// KernelELF returns the uncompressed kernel (vmlinux, an ELF file) inside the
// bzImage b: its payload, decompressed (gzip here; xz and zstd through the
// xz and zstd commands, as Debian compresses its kernels with xz).
//
// qemu boots such an ELF through its PVH entry point (the
// XEN_ELFNOTE_PHYS32_ENTRY note, CONFIG_PVH) without running the bzImage's
// decompressor, which is seconds of the boot under TCG. The decompressor is
// also what randomizes the kernel's base (KASLR): a kernel booted this way
// runs at its link address.
func KernelELF(b []byte) ([]byte, error) {
	if len(b) < offPayloadLength+4 || string(b[offHeaderMagic:offHeaderMagic+4]) != "HdrS" {
		return nil, ErrNotBzImage
	}
	if v := binary.LittleEndian.Uint16(b[offVersion:]); v < minPayloadVersion {
		return nil, fmt.Errorf("%w: boot protocol %#x has no payload offset", ErrNotBzImage, v)
	}
	setup := int(b[offSetupSects])
	if setup == 0 {
		setup = 4
	}
	pm := (setup + 1) * 512
	off := int(binary.LittleEndian.Uint32(b[offPayloadOffset:]))
	n := int(binary.LittleEndian.Uint32(b[offPayloadLength:]))
	if off < 0 || n <= 0 || pm+off < pm || pm+off+n > len(b) || pm+off+n < pm {
		return nil, fmt.Errorf("%w: payload (%d bytes at %d) outside the file", ErrNotBzImage, n, pm+off)
	}
	payload := b[pm+off : pm+off+n]
	var out []byte
	var err error
	switch {
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(payload)); err == nil {
			// The kernel appends the uncompressed size after the stream.
			zr.Multistream(false)
			out, err = io.ReadAll(zr)
		}
	case bytes.HasPrefix(payload, []byte("\xfd7zXZ\x00")):
		// Linux uses xz's x86 BCJ filter, which Go's xz readers lack.
		out, err = decompressCmd("xz", payload, "-dc", "--single-stream")
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		out, err = decompressCmd("zstd", payload, "-dc")
	default:
		return nil, fmt.Errorf("%w: payload compression not supported (gzip, xz, zstd)", ErrNotBzImage)
	}
	if err != nil {
		return nil, fmt.Errorf("decompress the kernel payload: %w", err)
	}
	if err := checkPVH(out); err != nil {
		return nil, err
	}
	return trimELF(out)
}

// trimELF drops the zeros that end the ELF file's last loaded segment
// (.bss and the early page tables: a third of Debian's kernel) by making
// that segment's size in the file smaller than its size in memory; the
// loader zero-fills the rest, as for any .bss. Section headers after it are
// dropped: booting needs only the program headers.
func trimELF(b []byte) ([]byte, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return b, nil
	}
	last := -1
	var end uint64
	for i, p := range f.Progs {
		if e := p.Off + p.Filesz; e > end {
			last, end = i, e
		}
	}
	if last < 0 || f.Progs[last].Type != elf.PT_LOAD || end > uint64(len(b)) {
		return b, nil
	}
	p := f.Progs[last]
	filesz := uint64(len(bytes.TrimRight(b[p.Off:end], "\x00")))
	// The 64-bit header's e_phoff, e_shoff and e_phentsize, and p_filesz
	// in a program header.
	le := binary.LittleEndian
	phoff, shoff, phentsize := le.Uint64(b[0x20:]), le.Uint64(b[0x28:]), uint64(le.Uint16(b[0x36:]))
	if shoff != 0 && shoff < end {
		// Section headers before the end: keep the file as it is.
		return b, nil
	}
	out := bytes.Clone(b[:p.Off+filesz])
	le.PutUint64(out[0x28:], 0) // e_shoff
	le.PutUint16(out[0x3c:], 0) // e_shnum
	le.PutUint16(out[0x3e:], 0) // e_shstrndx
	le.PutUint64(out[phoff+uint64(last)*phentsize+32:], filesz)
	return out, nil
}

func decompressCmd(name string, in []byte, args ...string) ([]byte, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("no %s command (apt-get install %s): %w", name, map[string]string{"xz": "xz-utils", "zstd": "zstd"}[name], err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %v: %w: %s", name, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// xenElfnotePhys32Entry is the ELF note type of the PVH entry point.
const xenElfnotePhys32Entry = 18

// checkPVH makes sure b is an x86-64 ELF kernel with a PVH entry point, which
// qemu needs to boot it.
func checkPVH(b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("the kernel payload is not an ELF file: %w", err)
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("the kernel is for %s, not x86-64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("kernel ELF notes: %w", err)
		}
		for len(notes) >= 12 {
			nameSz := int(binary.LittleEndian.Uint32(notes))
			descSz := int(binary.LittleEndian.Uint32(notes[4:]))
			typ := binary.LittleEndian.Uint32(notes[8:])
			name := notes[12:]
			if nameSz > len(name) {
				break
			}
			if typ == xenElfnotePhys32Entry && string(bytes.TrimRight(name[:nameSz], "\x00")) == "Xen" {
				return nil
			}
			next := 12 + align4(nameSz) + align4(descSz)
			if next > len(notes) || next <= 0 {
				break
			}
			notes = notes[next:]
		}
	}
	return errors.New("the kernel has no PVH entry point (CONFIG_PVH): qemu cannot boot it uncompressed")
}

func align4(n int) int { return (n + 3) &^ 3 }
