package rktgroup

import (
	"os"
	"os/user"
	"strconv"
	"sync"
)

// Name is the group whose members may read pod and image information.
const Name = "rkt"

// Mode is the mode of the directories the group may read: setgid, so that
// what is made in them belongs to the group too.
const Mode = 0o750 | os.ModeSetgid

// GID returns the group's ID, or false when the host has no such group.
// It is looked up once per process: a prepare asks for it for every
// directory it makes, and rkt commands are short-lived.
var GID = sync.OnceValues(lookupGID)

func lookupGID() (int, bool) {
	g, err := user.LookupGroup(Name)
	if err != nil {
		return 0, false
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil || gid <= 0 {
		return 0, false
	}
	return gid, true
}
