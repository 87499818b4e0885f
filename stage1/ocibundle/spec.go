package ocibundle

// The subset of the OCI runtime specification (v1.0.2, config.md and
// config-linux.md) that a bundle of an appc app uses. The module
// github.com/opencontainers/runtime-spec is not served by the Go proxy this
// project builds with, so the JSON types are written here; field names and
// tags follow the specification.

// Version is the runtime-spec version config.json declares: runc 1.1 and
// crun 1.8 (Debian 12) both accept it.
const Version = "1.0.2"

// Spec is config.json.
type Spec struct {
	Version  string  `json:"ociVersion"`
	Process  Process `json:"process"`
	Root     Root    `json:"root"`
	Hostname string  `json:"hostname,omitempty"`
	Mounts   []Mount `json:"mounts"`
	// Annotations carry the appc image's name and ID.
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       Linux             `json:"linux"`
}

// Process is the container's process.
type Process struct {
	Terminal        bool          `json:"terminal"`
	User            User          `json:"user"`
	Args            []string      `json:"args"`
	Env             []string      `json:"env"`
	Cwd             string        `json:"cwd"`
	Capabilities    *Capabilities `json:"capabilities,omitempty"`
	NoNewPrivileges bool          `json:"noNewPrivileges"`
	OOMScoreAdj     *int          `json:"oomScoreAdj,omitempty"`
}

// User is the process's numeric identity.
type User struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
}

// Capabilities are the process's capability sets, by CAP_ name. Every set is
// written, empty ones included: a missing set and an empty one mean the same.
type Capabilities struct {
	Bounding    []string `json:"bounding"`
	Effective   []string `json:"effective"`
	Inheritable []string `json:"inheritable"`
	Permitted   []string `json:"permitted"`
	Ambient     []string `json:"ambient"`
}

// Root is the bundle's root filesystem, relative to the bundle.
type Root struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly,omitempty"`
}

// Mount is one mount of the container.
type Mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// Linux is the Linux-specific configuration.
type Linux struct {
	Namespaces    []Namespace `json:"namespaces"`
	Resources     *Resources  `json:"resources,omitempty"`
	Seccomp       *Seccomp    `json:"seccomp,omitempty"`
	MaskedPaths   []string    `json:"maskedPaths,omitempty"`
	ReadonlyPaths []string    `json:"readonlyPaths,omitempty"`
}

// Namespace is one namespace the container gets.
type Namespace struct {
	Type string `json:"type"`
}

// Resources are the container's cgroup limits.
type Resources struct {
	Devices []DeviceRule `json:"devices,omitempty"`
	Memory  *Memory      `json:"memory,omitempty"`
	CPU     *CPU         `json:"cpu,omitempty"`
}

// DeviceRule is one device cgroup rule.
type DeviceRule struct {
	Allow  bool   `json:"allow"`
	Access string `json:"access,omitempty"`
}

// Memory is the memory controller's limit.
type Memory struct {
	Limit *int64 `json:"limit,omitempty"`
}

// CPU is the cpu controller's settings.
type CPU struct {
	Shares *uint64 `json:"shares,omitempty"`
	Quota  *int64  `json:"quota,omitempty"`
	Period *uint64 `json:"period,omitempty"`
}

// Seccomp is a seccomp profile in the runtime-spec's libseccomp terms.
type Seccomp struct {
	DefaultAction   string           `json:"defaultAction"`
	DefaultErrnoRet *uint            `json:"defaultErrnoRet,omitempty"`
	Architectures   []string         `json:"architectures"`
	Syscalls        []SyscallActions `json:"syscalls,omitempty"`
}

// SyscallActions gives the syscalls Names an action other than the default.
type SyscallActions struct {
	Names    []string `json:"names"`
	Action   string   `json:"action"`
	ErrnoRet *uint    `json:"errnoRet,omitempty"`
}
