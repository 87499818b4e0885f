package cri

import (
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerSpecStreams: a container's log path, stdin, stdin_once and
// tty reach the AppSpec (the pod writes the CRI log, keeps stdin open,
// gives the terminal).
func TestContainerSpecStreams(t *testing.T) {
	logDir := t.TempDir()
	sb := sandboxMeta{LogDirectory: logDir}
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cc := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
		Image:    &runtimeapi.ImageSpec{Image: "img"},
		LogPath:  "c/0.log",
		Stdin:    true, StdinOnce: true, Tty: true,
	}
	spec, meta, err := containerSpec(id, cc, sb, "img", []string{"/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(logDir, "c/0.log")
	if spec.CRILogPath != want || meta.LogPath != want {
		t.Errorf("CRILogPath %q, meta %q, want %q", spec.CRILogPath, meta.LogPath, want)
	}
	if !spec.Stdin || !spec.StdinOnce || !spec.TTY {
		t.Errorf("stdin %v stdin_once %v tty %v, want all true", spec.Stdin, spec.StdinOnce, spec.TTY)
	}
	cc.Stdin = false
	if spec, _, _ := containerSpec(id, cc, sb, "img", []string{"/bin/sh"}); spec.StdinOnce {
		t.Error("stdin_once without stdin kept")
	}
}
