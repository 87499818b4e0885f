// Package channel is the protocol between the KVM stage1's host side
// (stage1/kvm) and its agent in the guest (stage1/kvm/agent), spoken over one
// virtio-serial port named [PortName].
//
// A message is a frame: a 4-byte big-endian length n, then n bytes: one type
// byte and the payload (at most [MaxPayload] bytes). Control messages carry
// JSON, output messages raw bytes. The conversation:
//
//	guest → host  Hello {kernel}          the agent is up (ends the boot timeout)
//	host → guest  Start {StartRequest}    the pod to run
//	guest → host  Stdout / Stderr bytes   the pod's output, in order
//	host → guest  Signal {signal}         forwarded to the pod (SIGTERM stops it gracefully)
//	guest → host  Exit {code, error}      the pod's exit code; then the guest powers off
//
// While the pod runs, the host may open exec sessions, each with its own
// ID, for rkt enter (a command inside an app, with the app's confinement)
// and rkt kill (a signal for one app's or every app's main process):
//
//	host → guest  ExecStart {ExecRequest} start session ID
//	host → guest  ExecIn ID+bytes         the command's stdin; no bytes is its end
//	guest → host  ExecOut ID+stream+bytes its stdout (stream 1) or stderr (stream 2)
//	guest → host  ExecExit {ExecExitMsg}  its exit code; the session is over
//	host → guest  ExecResize {ResizeMsg}  a terminal session's new window size
//
// A session with ExecRequest.Terminal runs on a pseudo-terminal in the
// guest: its output comes as stream 1 only, and ExecIn is what is typed.
//
// ID 0 is never a session: it is the pod itself when StartRequest.Stdin is
// set (rkt run --interactive). ExecIn with ID 0 is the pod's stdin, and,
// with StartRequest.Terminal, ExecResize with ID 0 resizes its terminal;
// its output stays Stdout (and Stderr without a terminal) frames.
//
// On the host, the enter and stop entrypoints reach the run entrypoint over
// the pod directory's kvm.sock with the same framing: an ExecStart frame,
// ExecIn and ExecResize frames without ID, and back Stdout, Stderr and
// Exit frames.
//
// Nothing in a frame from the guest is trusted by the host: lengths are
// bounded before anything is allocated, JSON is decoded into fixed structs,
// and the host only relays output bytes and reads one exit code.
package channel

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// PortName is the name of the virtio-serial port (virtserialport name=).
const PortName = "rkt.agent"

// MaxPayload bounds a frame's payload.
const MaxPayload = 1 << 20

// Type is the type of a message.
type Type byte

// Message types.
const (
	Hello  Type = 'H' // guest → host, JSON HelloMsg
	Start  Type = 'S' // host → guest, JSON StartRequest
	Stdout Type = 'O' // guest → host, raw bytes
	Stderr Type = 'E' // guest → host, raw bytes
	Signal Type = 'K' // host → guest, JSON SignalMsg
	Exit   Type = 'X' // guest → host, JSON ExitMsg

	ExecStart Type = 'A' // host → guest, JSON ExecRequest
	ExecIn    Type = 'I' // host → guest, ID + raw bytes
	ExecOut   Type = 'o' // guest → host, ID + stream byte + raw bytes
	ExecExit  Type = 'x' // guest → host, JSON ExecExitMsg
	// ExecResize is host → guest, JSON ResizeMsg: the window size of a
	// terminal session changed.
	ExecResize Type = 'W'
)

func (t Type) String() string {
	switch t {
	case Hello:
		return "hello"
	case Start:
		return "start"
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	case Signal:
		return "signal"
	case Exit:
		return "exit"
	case ExecStart:
		return "exec-start"
	case ExecIn:
		return "exec-in"
	case ExecOut:
		return "exec-out"
	case ExecExit:
		return "exec-exit"
	case ExecResize:
		return "exec-resize"
	}
	return fmt.Sprintf("type(%#x)", byte(t))
}

// HelloMsg is the agent's first message.
type HelloMsg struct {
	// Kernel is the guest kernel's release (uname -r).
	Kernel string `json:"kernel"`
}

// StartRequest tells the agent what to run.
type StartRequest struct {
	// UUID is the pod's UUID.
	UUID string `json:"uuid"`
	// Files are the pod directory's files the guest needs (pod manifest,
	// image manifests, stage1 options), by path relative to the pod
	// directory (pods/layout names).
	Files map[string][]byte `json:"files"`
	// Mounts are the 9p shares to mount, in order.
	Mounts []Mount `json:"mounts"`
	// Args are the arguments of the namespace stage1's run entrypoint,
	// which the agent runs in the guest's pod directory.
	Args []string `json:"args"`
	// Hostname is the guest's hostname.
	Hostname string `json:"hostname,omitempty"`
	// Interfaces are the guest's network interfaces, found by MAC.
	Interfaces []Interface `json:"interfaces,omitempty"`
	// Stdin: the pod reads stdin, sent as ExecIn frames with ID 0 (rkt
	// run --interactive). Terminal: on a pseudo-terminal in the guest, of
	// Rows x Cols when both are set, with $TERM Term.
	Stdin    bool   `json:"stdin,omitempty"`
	Terminal bool   `json:"terminal,omitempty"`
	Term     string `json:"term,omitempty"`
	Rows     uint16 `json:"rows,omitempty"`
	Cols     uint16 `json:"cols,omitempty"`
}

// PodSession is the session ID of the pod's own stdin and terminal.
const PodSession = 0

// Interface is the configuration of one guest network interface: the
// addresses and routes the pod's network gave the interface it replaces.
type Interface struct {
	MAC string `json:"mac"`
	MTU int    `json:"mtu,omitempty"`
	// Addrs are CIDR prefixes ("10.1.0.5/16").
	Addrs  []string `json:"addrs,omitempty"`
	Routes []Route  `json:"routes,omitempty"`
}

// Route is one route through an interface.
type Route struct {
	// Dst is a CIDR prefix; "" is the default route of Gw's family.
	Dst string `json:"dst,omitempty"`
	// Gw is the gateway; "" makes a link-scope route.
	Gw string `json:"gw,omitempty"`
}

// Mount is one 9p share.
type Mount struct {
	// Tag is the share's mount_tag.
	Tag string `json:"tag"`
	// Path is where the guest mounts it: relative to the pod directory
	// when not absolute.
	Path     string `json:"path"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// SignalMsg forwards a signal.
type SignalMsg struct {
	Signal int `json:"signal"`
}

// ExitMsg is the pod's end.
type ExitMsg struct {
	// Code is the exit code of the pod (rkt run's), 254 if the agent failed.
	Code int `json:"code"`
	// Error is the agent's own failure, if any.
	Error string `json:"error,omitempty"`
}

// ExecRequest starts an exec session.
type ExecRequest struct {
	ID uint32 `json:"id"`
	// App is the app: the one to enter, or the one to signal ("" for
	// every app).
	App string `json:"app,omitempty"`
	// Args is the command to run in the app (rkt enter); empty with Signal.
	Args []string `json:"args,omitempty"`
	// Signal is the signal for the apps' main processes (rkt kill).
	Signal int `json:"signal,omitempty"`
	// Terminal runs the command on a pseudo-terminal in the guest (rkt
	// enter on a terminal), of Rows x Cols when both are set, with $TERM
	// Term.
	Terminal bool   `json:"terminal,omitempty"`
	Term     string `json:"term,omitempty"`
	Rows     uint16 `json:"rows,omitempty"`
	Cols     uint16 `json:"cols,omitempty"`
}

// ResizeMsg is a terminal session's new window size.
type ResizeMsg struct {
	ID   uint32 `json:"id,omitempty"`
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// ExecExitMsg ends an exec session.
type ExecExitMsg struct {
	ID    uint32 `json:"id"`
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

// Streams of ExecOut.
const (
	StreamStdout byte = 1
	StreamStderr byte = 2
)

// WithID prefixes data with a session ID (ExecIn, ExecOut).
func WithID(id uint32, data []byte) []byte {
	b := make([]byte, 4+len(data))
	binary.BigEndian.PutUint32(b, id)
	copy(b[4:], data)
	return b
}

// SplitID splits a session ID off a payload.
func SplitID(p []byte) (uint32, []byte, error) {
	if len(p) < 4 {
		return 0, nil, errors.New("channel: payload without session ID")
	}
	return binary.BigEndian.Uint32(p), p[4:], nil
}

// ErrTooLarge is returned by [Read] for a frame above MaxPayload.
var ErrTooLarge = errors.New("channel: frame too large")

// Write writes one frame.
func Write(w io.Writer, t Type, payload []byte) error {
	if len(payload) > MaxPayload {
		return ErrTooLarge
	}
	buf := make([]byte, 5+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(1+len(payload)))
	buf[4] = byte(t)
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

// WriteJSON writes one frame with v as JSON.
func WriteJSON(w io.Writer, t Type, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return Write(w, t, b)
}

// Read reads one frame. A clean end of stream before a frame is io.EOF.
func Read(r io.Reader) (Type, []byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n == 0 {
		return 0, nil, errors.New("channel: empty frame")
	}
	if n-1 > MaxPayload {
		return 0, nil, ErrTooLarge
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("channel: truncated frame: %w", err)
	}
	return Type(buf[0]), buf[1:], nil
}

// Decode decodes a JSON payload of type t into v.
func Decode(t Type, payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("channel: %s message: %w", t, err)
	}
	return nil
}
