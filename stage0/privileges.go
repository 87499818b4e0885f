package stage0

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/rkt-ng/rkt/internal/rktgroup"
)

// unprivileged are the commands a user other than root may run: those that
// only read pod and image information, which members of the rkt group can
// (internal/rktgroup), and those that read nothing of the data directory.
var unprivileged = []string{
	"rkt list", "rkt status", "rkt cat-manifest", "rkt image list", "rkt image cat-manifest",
	"rkt version", "rkt help", "rkt", "rkt image",
}

// CheckUser refuses command (a command path, "rkt image list") to a user
// other than root unless it only reads pod or image information, as rkt 1.30
// refused its other commands ("cannot run as unprivileged user", exit 254).
// Fetching as a member of the rkt group, which rkt allowed, is refused too:
// whoever owns a file in the store can change it after it was verified and
// before root runs it.
func CheckUser(command string) error { return checkUser(command, os.Geteuid()) }

func checkUser(command string, euid int) error {
	if euid == 0 || slices.Contains(unprivileged, command) || strings.HasPrefix(command, "rkt completion") {
		return nil
	}
	return fmt.Errorf("%s: cannot run as unprivileged user (uid %d): run it as root; members of group %s may only use %s",
		command, euid, rktgroup.Name, strings.Join(unprivileged[:5], ", "))
}
