package cgroups

// version is what differs between cgroup v1 ([Legacy]) and v2 ([Unified]) for
// one pod: [Pod] keeps what both share (the pod directories, the child
// cgroups, the apps planned before EnableControllers, removal) and asks its
// version, [v1] or [v2], for the rest. Both are views of the same *Pod, so
// they hold no state of their own.
type version interface {
	// uses reports whether the pod gets a cgroup in hierarchy h.
	uses(h Hierarchy) bool
	// notIn handles a hierarchy in which the process has no cgroup: an
	// error stops NewPod, nil skips the hierarchy.
	notIn(h Hierarchy) error
	// delegate prepares the parent of the pod cgroup before it is made.
	delegate()
	// controllers returns the controllers usable for limits on the pod
	// cgroup, unsorted.
	controllers() []string
	// enable lets the pod's children use its controllers, once the pod
	// cgroup itself holds no process.
	enable() error
	// defersApps reports whether PlanApp must only record apps until
	// EnableControllers (v2: see the package doc).
	defersApps() bool
	// checkControllers fails with a [*ControllerError] unless the pod has
	// every controller l needs.
	checkControllers(l Limits) error
	// limitWrites returns the cgroup files that apply l, in order.
	limitWrites(l Limits) []limitWrite
	// controllerDir returns the directory holding controller c's files
	// for the pod cgroup (sub "") or its child sub.
	controllerDir(c, sub string) (string, error)
	// restrictDevices applies the closed device policy to the pod.
	restrictDevices() error
	// appMade applies to a new app cgroup what the pod's policy needs
	// there and does not inherit.
	appMade(name string) error
	// readOOM returns the file telling whether app name saw an OOM kill,
	// and its name.
	readOOM(name string) ([]byte, string, error)
	// killFile returns a file that kills the whole pod subtree when "1" is
	// written to it, or "".
	killFile() string
	// mounts returns the pod's view of its cgroups ([Pod.Mounts]).
	mounts() []MountSpec
	// joinFiles returns the files through which a process joins app
	// name's cgroups from inside the pod ([App.JoinFiles]).
	joinFiles(name string) []string
}

// limitWrite is one value written to one controller's file.
type limitWrite struct{ controller, file, value string }

var (
	_ version = v1{}
	_ version = v2{}
)

// version returns the pod's cgroup version for its mode.
func (p *Pod) version() version {
	if p.mode == Unified {
		return v2{p}
	}
	return v1{p}
}
