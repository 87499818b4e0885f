package vm

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"testing"
)

// tinyELF is an x86-64 ELF header with one PT_NOTE segment holding a note
// of type typ named name, then the PT_LOAD segments load, if any.
func tinyELF(name string, typ uint32, load ...[]byte) []byte {
	var note bytes.Buffer
	n := append([]byte(name), 0)
	binary.Write(&note, binary.LittleEndian, [3]uint32{uint32(len(n)), 8, typ})
	note.Write(n)
	note.Write(make([]byte, align4(len(n))-len(n)))
	note.Write([]byte{0x50, 8, 0, 1, 0, 0, 0, 0})
	const ehsize, phsize = 64, 56
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, elf.Header64{
		Ident:     [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     ehsize,
		Ehsize:    ehsize,
		Phentsize: phsize,
		Phnum:     uint16(1 + len(load)),
	})
	off := uint64(ehsize + phsize*(1+len(load)))
	binary.Write(&b, binary.LittleEndian, elf.Prog64{
		Type: uint32(elf.PT_NOTE), Off: off, Filesz: uint64(note.Len()), Memsz: uint64(note.Len()), Align: 4,
	})
	off += uint64(note.Len())
	for _, l := range load {
		binary.Write(&b, binary.LittleEndian, elf.Prog64{
			Type: uint32(elf.PT_LOAD), Off: off, Filesz: uint64(len(l)), Memsz: uint64(len(l)), Align: 1,
		})
		off += uint64(len(l))
	}
	b.Write(note.Bytes())
	for _, l := range load {
		b.Write(l)
	}
	return b.Bytes()
}

// bzImage wraps payload in a bzImage header of boot protocol version.
func bzImage(payload []byte, version uint16) []byte {
	const setupSects = 2
	b := make([]byte, (setupSects+1)*512+100)
	b[offSetupSects] = setupSects
	copy(b[offHeaderMagic:], "HdrS")
	binary.LittleEndian.PutUint16(b[offVersion:], version)
	binary.LittleEndian.PutUint32(b[offPayloadOffset:], 100)
	binary.LittleEndian.PutUint32(b[offPayloadLength:], uint32(len(payload)+4))
	b = append(b, payload...)
	// The uncompressed size, as the kernel's build appends it.
	return binary.LittleEndian.AppendUint32(b, 1234)
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func TestKernelELF(t *testing.T) {
	kernel := tinyELF("Xen", xenElfnotePhys32Entry)
	got, err := KernelELF(bzImage(gzipped(kernel), 0x020f))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, kernel) {
		t.Errorf("KernelELF returned %d bytes, want the %d of the ELF kernel", len(got), len(kernel))
	}
}

// TestKernelELFTrims: the zeros that end the last loaded segment leave the
// file, and stay in memory (p_memsz).
func TestKernelELFTrims(t *testing.T) {
	text := []byte("text\x00\x00segment")
	bss := append([]byte("data"), make([]byte, 4096)...)
	kernel := tinyELF("Xen", xenElfnotePhys32Entry, text, bss)
	got, err := KernelELF(bzImage(gzipped(kernel), 0x020f))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(kernel) - 4096; len(got) != want {
		t.Fatalf("trimmed kernel is %d bytes, want %d", len(got), want)
	}
	f, err := elf.NewFile(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Progs) != 3 {
		t.Fatalf("%d program headers, want 3", len(f.Progs))
	}
	if p := f.Progs[1]; p.Filesz != uint64(len(text)) || p.Memsz != uint64(len(text)) {
		t.Errorf("first load segment: filesz %d memsz %d, want both %d", p.Filesz, p.Memsz, len(text))
	}
	if p := f.Progs[2]; p.Filesz != 4 || p.Memsz != uint64(len(bss)) {
		t.Errorf("last load segment: filesz %d memsz %d, want 4 and %d", p.Filesz, p.Memsz, len(bss))
	}
	if !bytes.HasSuffix(got, []byte("text\x00\x00segmentdata")) {
		t.Errorf("trimmed kernel ends %q", got[len(got)-20:])
	}
}

func TestKernelELFRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		img     []byte
		notBz   bool
		message string
	}{
		"not a bzImage":     {img: []byte("MZ not a kernel at all"), notBz: true},
		"old protocol":      {img: bzImage(gzipped(tinyELF("Xen", xenElfnotePhys32Entry)), 0x0206), notBz: true},
		"payload too long":  {img: bzImage(gzipped(tinyELF("Xen", xenElfnotePhys32Entry)), 0x020f)[:700], notBz: true},
		"unknown payload":   {img: bzImage([]byte("LZ4 or something"), 0x020f), notBz: true},
		"not an ELF inside": {img: bzImage(gzipped([]byte("plain data")), 0x020f), message: "not an ELF"},
		"no PVH entry":      {img: bzImage(gzipped(tinyELF("Xen", 17)), 0x020f), message: "no PVH entry point"},
		"note of another":   {img: bzImage(gzipped(tinyELF("GNU", xenElfnotePhys32Entry)), 0x020f), message: "no PVH entry point"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := KernelELF(tc.img)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrNotBzImage) != tc.notBz {
				t.Errorf("errors.Is(%v, ErrNotBzImage) = %v, want %v", err, !tc.notBz, tc.notBz)
			}
			if tc.message != "" && !bytes.Contains([]byte(err.Error()), []byte(tc.message)) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
		})
	}
}
