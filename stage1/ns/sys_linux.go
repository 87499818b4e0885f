package ns

import "syscall"

// os.ProcAttr and os.ProcessState speak the syscall package's types; these
// aliases keep that import in one place.
type (
	unixSysProcAttr = syscall.SysProcAttr
	unixWaitStatus  = syscall.WaitStatus
)

type unixIDMap = syscall.SysProcIDMap

type unixCredential = syscall.Credential
