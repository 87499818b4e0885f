// Command stage1-kvm-agent is PID 1 of the KVM stage1's guest, /init in its
// initramfs (stage1/kvm/agent).
package main

import (
	"runtime"

	"github.com/rkt-ng/rkt/stage1/kvm/agent"
)

func init() {
	// PID 1 forks the pod's stage1 and reaps it from this thread: keep main
	// on the initial thread, deliberately for the process's whole life.
	runtime.LockOSThread()
}

func main() { agent.Main() }
