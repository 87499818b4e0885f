package stage1

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/untrusted"
	"github.com/rkt-ng/rkt/pods/layout"
)

// SignalPod is the stop entrypoint's whole-pod case for every flavor: it
// sends SIGTERM (SIGKILL when force) to the process in the pod directory's
// pid file, read as the pod-written, hostile file it is. The directory is
// the current one, as for every entrypoint. A process already gone is not
// an error.
func SignalPod(force bool) error {
	b, err := untrusted.ReadFile(layout.Dir(".").PID(), 64)
	if err != nil {
		return fmt.Errorf("stop: pod has no pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("stop: invalid pid %q", b)
	}
	sig := unix.SIGTERM
	if force {
		sig = unix.SIGKILL
	}
	if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
		return os.NewSyscallError("kill", err)
	}
	return nil
}
