package stage1

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/pods/layout"
)

// InfoFile, in the pod directory, holds what a stage1 reports about how it
// runs the pod (rkt-ng extension): lines KEY=VALUE, which `rkt status`
// prints as stage1-KEY=VALUE and `rkt list --full` in its STAGE1 column.
// The KVM stage1 writes "accelerator=kvm" or "accelerator=tcg".
const InfoFile = layout.Stage1Info

// Bounds of InfoFile: what a reader keeps. The file is the pod's and so
// hostile; a line outside the bounds is skipped.
const (
	MaxInfoBytes  = 4096
	MaxInfoKeys   = 16
	MaxInfoKeyLen = 32
	MaxInfoValLen = 128
)

// validInfoKey: a lowercase letter, then lowercase letters, digits and '-'.
func validInfoKey(k string) bool {
	if k == "" || len(k) > MaxInfoKeyLen || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for _, c := range []byte(k) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validInfoValue: printable ASCII without spaces and '=' is allowed, as in
// "accelerator=kvm"; nothing that could forge a second line or column.
func validInfoValue(v string) bool {
	if v == "" || len(v) > MaxInfoValLen {
		return false
	}
	for _, c := range []byte(v) {
		if c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return true
}

// FormatInfo renders info as the content of InfoFile, keys sorted. A key or
// value a reader would skip is an error.
func FormatInfo(info map[string]string) ([]byte, error) {
	if len(info) > MaxInfoKeys {
		return nil, fmt.Errorf("stage1 info: %d keys, at most %d", len(info), MaxInfoKeys)
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(info)) {
		v := info[k]
		if !validInfoKey(k) {
			return nil, fmt.Errorf("stage1 info: bad key %q", k)
		}
		if !validInfoValue(v) {
			return nil, fmt.Errorf("stage1 info: bad value %q of %s", v, k)
		}
		b.WriteString(k + "=" + v + "\n")
	}
	if b.Len() > MaxInfoBytes {
		return nil, errors.New("stage1 info: too long")
	}
	return []byte(b.String()), nil
}

// WriteInfo replaces InfoFile in the pod directory podDir (atomically).
func WriteInfo(podDir string, info map[string]string) error {
	b, err := FormatInfo(info)
	if err != nil {
		return err
	}
	return atomicfile.Replace(layout.Dir(podDir).Stage1Info(), b, 0o644)
}

// ParseInfo reads the content of InfoFile, keeping the valid lines (the
// first of a repeated key) up to MaxInfoKeys; it never fails, so that a
// hostile file cannot break `rkt status`.
func ParseInfo(b []byte) map[string]string {
	if len(b) > MaxInfoBytes {
		return nil
	}
	var out map[string]string
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok || !validInfoKey(k) || !validInfoValue(v) {
			continue
		}
		if _, dup := out[k]; dup {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		if len(out) == MaxInfoKeys {
			break
		}
		out[k] = v
	}
	return out
}

// FormatInfoList renders info on one line, "k1=v1,k2=v2", keys sorted (the
// STAGE1 column of `rkt list --full`).
func FormatInfoList(info map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(info)) {
		parts = append(parts, k+"="+info[k])
	}
	return strings.Join(parts, ",")
}
