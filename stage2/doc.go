// Package stage2 is the init that runs as PID 1 of a pod: it starts each app
// chrooted into its rootfs with its confinement, reaps zombies, forwards
// signals, runs event handlers and records every app's exit status. It is
// Linux-only and must stay small: no cobra, net/http or signing.
package stage2
