// Command nnp prints its effective user ID, as the nonewprivs image of the
// Kubernetes e2e tests does: installed setuid root, it shows whether
// no_new_privs kept the setuid bit from taking effect (critest's NoNewPrivs
// specs; testutil.PushCRIImages).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
