package stage0

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rkt-ng/rkt/stage1"
)

// checkCRILogPath accepts "" (no CRI log) or a clean absolute path.
func checkCRILogPath(path string) error {
	if path == "" {
		return nil
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) != path || strings.ContainsRune(path, 0) {
		return fmt.Errorf("--cri-log-path %q: want a clean absolute path", path)
	}
	return nil
}

// AppReopenLog has the pod write a running app's CRI log (AppSpec.CRILogPath)
// to a new file at its path: the kubelet renames the file away to rotate it,
// then asks for this (CRI ReopenContainerLog). It fails if the app has no
// CRI log or is not running.
func (c *Config) AppReopenLog(ctx context.Context, ref, app string) error {
	m, err := c.openMutableApp(ref, app)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.opts.Apps[app].CRILogPath == "" {
		return fmt.Errorf("pod %s: app %s has no CRI log", m.pod.UUID, app)
	}
	if m.ep.AppReopenLog == "" {
		return fmt.Errorf("pod %s: its stage1 cannot reopen logs (annotation %s missing)", m.pod.UUID, stage1.AnnotationAppReopenLog)
	}
	if !m.running(app) {
		return fmt.Errorf("pod %s: app %s is not running", m.pod.UUID, app)
	}
	return c.runApp(ctx, m, m.ep.AppReopenLog, stage1.AppArgs{App: app})
}
