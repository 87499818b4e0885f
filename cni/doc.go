// Package cni sets up and tears down pod networks with libcni and the
// reference plugins: it loads network configurations (built-in default and
// default-restricted, and net.d), creates the pod network namespace, runs ADD
// with rollback on failure, and records everything needed for DEL in
// net-info.json so that teardown works from gc after a crash. Linux-only.
package cni
