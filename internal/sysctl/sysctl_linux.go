// Package sysctl writes kernel parameters through /proc/sys. It is
// Linux-only.
//
// A key is written in sysctl(8)'s dotted form ("net.ipv4.ip_forward") and
// maps to /proc/sys/net/ipv4/ip_forward. [Write] refuses, before writing
// anything, a key that could name a file outside /proc/sys or a directory:
// empty, with an empty element (leading, trailing or doubled dot), or with
// '/' or NUL. It does not decide which keys are allowed: callers do (stage1
// allows namespaced net.* keys only).
//
// /proc/sys/net shows the network namespace of the thread that opens it
// (proc(5)), so a caller writing into a pod's namespace must call Write on a
// thread inside it (see internal/netns).
package sysctl

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// Check reports whether key is a well-formed dotted sysctl name.
func Check(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("invalid sysctl key %q: empty", key)
	case strings.ContainsAny(key, "/\x00"):
		return fmt.Errorf("invalid sysctl key %q: contains '/' or NUL", key)
	case strings.HasPrefix(key, "."), strings.HasSuffix(key, "."), strings.Contains(key, ".."):
		return fmt.Errorf("invalid sysctl key %q: empty element", key)
	}
	return nil
}

// Path returns the /proc/sys file of a key that passed [Check].
func Path(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// Write sets every key of s to its value, in key order, after checking all
// keys. It stops at the first failure.
func Write(s map[string]string) error {
	keys := slices.Sorted(maps.Keys(s))
	for _, k := range keys {
		if err := Check(k); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := os.WriteFile(Path(k), []byte(s[k]), 0); err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
	}
	return nil
}
