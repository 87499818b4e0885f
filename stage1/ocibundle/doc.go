// Package ocibundle writes the OCI runtime configuration (config.json of a
// runtime bundle) of an appc image's app, so that runc or crun starts it as
// rkt-ng's namespace flavor would: the same argv, environment, user and
// working directory (stage1/podspec), capabilities, seccomp filter
// (stage2/seccomp's sets, as a libseccomp profile), no_new_privs, masked and
// read-only paths (stage1/podsetup) and cgroup limits (stage1/cgroups).
// Linux-only.
package ocibundle
