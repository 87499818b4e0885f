package vm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// CPIOWriter writes a cpio archive in the "newc" format that the kernel
// unpacks as an initramfs (Documentation/driver-api/early-userspace/
// buffer-format.rst): a 110-byte ASCII header, the NUL-terminated name and
// the data, each padded to 4 bytes, and a "TRAILER!!!" entry at the end.
type CPIOWriter struct {
	w   io.Writer
	off int64
	ino uint32
	// names guards against writing one path twice.
	names  map[string]bool
	closed bool
}

// NewCPIOWriter returns a writer appending an archive to w.
func NewCPIOWriter(w io.Writer) *CPIOWriter {
	return &CPIOWriter{w: w, ino: 1, names: map[string]bool{}}
}

const (
	cpioMagic   = "070701"
	cpioTrailer = "TRAILER!!!"
	sIFDIR      = 0o040000
	sIFREG      = 0o100000
	sIFLNK      = 0o120000
	sIFCHR      = 0o020000
)

// Dir adds a directory.
func (c *CPIOWriter) Dir(name string, perm fs.FileMode) error {
	return c.entry(name, sIFDIR|uint32(perm.Perm()), 0, 0, nil, 0)
}

// File adds a regular file of size bytes read from r.
func (c *CPIOWriter) File(name string, perm fs.FileMode, r io.Reader, size int64) error {
	return c.entry(name, sIFREG|uint32(perm.Perm()), 0, 0, r, size)
}

// Symlink adds a symbolic link to target.
func (c *CPIOWriter) Symlink(name, target string) error {
	return c.entry(name, sIFLNK|0o777, 0, 0, strings.NewReader(target), int64(len(target)))
}

// CharDev adds a character device node.
func (c *CPIOWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	return c.entry(name, sIFCHR|uint32(perm.Perm()), major, minor, nil, 0)
}

// Close writes the trailer. It does not close the underlying writer.
func (c *CPIOWriter) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if err := c.header(cpioTrailer, 0, 0, 0, 0, 0, 1); err != nil {
		return err
	}
	return c.pad()
}

func (c *CPIOWriter) entry(name string, mode, rmajor, rminor uint32, r io.Reader, size int64) error {
	if c.closed {
		return errors.New("cpio: write after close")
	}
	clean := path.Clean(strings.TrimPrefix(name, "/"))
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || clean == cpioTrailer {
		return fmt.Errorf("cpio: invalid entry name %q", name)
	}
	if c.names[clean] {
		return fmt.Errorf("cpio: duplicate entry %q", clean)
	}
	if size < 0 || size > 0xFFFFFFFF {
		return fmt.Errorf("cpio: entry %q: size %d does not fit the newc format", clean, size)
	}
	c.names[clean] = true
	ino := c.ino
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == sIFDIR {
		nlink = 2
	}
	if err := c.header(clean, ino, mode, nlink, uint32(size), rmajor, rminor); err != nil {
		return err
	}
	if size > 0 {
		n, err := io.CopyN(c.w, r, size)
		c.off += n
		if err != nil {
			return fmt.Errorf("cpio: entry %q: %w", clean, err)
		}
	}
	return c.pad()
}

func (c *CPIOWriter) header(name string, ino, mode, nlink, size, rmajor, rminor uint32) error {
	h := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%s\x00",
		cpioMagic, ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0, name)
	n, err := io.WriteString(c.w, h)
	c.off += int64(n)
	if err != nil {
		return err
	}
	return c.pad()
}

// pad aligns the output to 4 bytes.
func (c *CPIOWriter) pad() error {
	if r := c.off % 4; r != 0 {
		n, err := c.w.Write(make([]byte, 4-r))
		c.off += int64(n)
		return err
	}
	return nil
}
