package stage0

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage1"
)

// RunOptions are the flags of `rkt run` and `rkt run-prepared` that go to
// the stage1 run entrypoint.
type RunOptions struct {
	Args         stage1.RunArgs // UUID is filled in
	UUIDFileSave string
	// MDSRegister has the stage1 serve the metadata service with a fresh token.
	MDSRegister bool
	// DNS, for `rkt run-prepared`, replaces the DNS and hosts settings the
	// pod was prepared with when any of its flags is given (rkt took them
	// at run-prepared, not at prepare).
	DNS DNSFlags
}

// Run prepares a pod and execs its stage1. On success it does not return:
// this process becomes the pod.
func (c *Config) Run(ctx context.Context, pc PrepareConfig, ro RunOptions) error {
	// rkt checked this before fetching anything (rkt/run.go), with these
	// words; stage1 checks the pod it gets again (a --pod-manifest).
	if ro.Args.Interactive && len(pc.Apps) > 1 {
		return fmt.Errorf("--interactive: interactive option only supports one image, not %d", len(pc.Apps))
	}
	pr, err := c.prepare(ctx, pc)
	if err != nil {
		return err
	}
	if err := pr.pod.ToRun(); err != nil {
		discard(pr.pod)
		return err
	}
	if err := pausepoint.Reach(ctx, pausepoint.Stage1Exec); err != nil {
		return err
	}
	return c.execStage1(pr.pod, ro)
}

// RunPrepared runs a pod made by `rkt prepare`.
func (c *Config) RunPrepared(ctx context.Context, ref string, ro RunOptions) error {
	// Checked before the pod is touched.
	var dns stage1.Options
	if err := ro.DNS.apply(&dns); err != nil {
		return fmt.Errorf("dns flags: %w", err)
	}
	p, err := c.pod(ref)
	if err != nil {
		return err
	}
	if p.State() != pods.Prepared {
		return fmt.Errorf("pod %s: %w: %s, want prepared", p.UUID, pods.ErrBadState, p.State())
	}
	if err := p.TakeLock(); err != nil {
		return err
	}
	if ro.DNS.given() {
		if err := setDNS(p, dns); err != nil {
			p.Close()
			return err
		}
	}
	if err := p.ToRun(); err != nil {
		p.Close()
		return err
	}
	return c.execStage1(p, ro)
}

// setDNS replaces the DNS and hosts settings in a locked prepared pod's
// stage1-options.json.
func setDNS(p *pods.Pod, dns stage1.Options) error {
	o, err := stage1.ReadOptions(p.OptionsPath())
	if err != nil {
		return err
	}
	o.DNS, o.DNSSearch, o.DNSOptions, o.DNSDomain, o.HostsEntries = dns.DNS, dns.DNSSearch, dns.DNSOptions, dns.DNSDomain, dns.HostsEntries
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return atomicfile.Replace(p.OptionsPath(), b, 0o644)
}

// execStage1 replaces this process with the stage1 run entrypoint, handing
// it the pod's lock fd (RKT_LOCK_FD) so that the lock lives exactly as long
// as the pod.
func (c *Config) execStage1(p *pods.Pod, ro RunOptions) error {
	ep, err := c.stage1Entrypoints(p)
	if err != nil {
		return err
	}
	entry, err := c.stage1Program(p, ep.Run)
	if err != nil {
		return err
	}
	ro.Args.UUID = p.UUID
	if shift, count, err := readUIDRange(p.Path()); err == nil {
		ro.Args.PrivateUsers = fmt.Sprintf("%d:%d", shift, count)
	}
	if ro.MDSRegister && ro.Args.MDSToken == "" {
		tok, err := stage1.NewMDSToken()
		if err != nil {
			return err
		}
		// The token stays off argv and the environment, which other local
		// users can read in /proc: the stage1 reads it from the pod's
		// root-only file. A stage1 that does not declare it can (rkt's)
		// only takes it as --mds-token.
		if err := atomicfile.Replace(p.MDSTokenPath(), []byte(tok), 0o600); err != nil {
			return fmt.Errorf("metadata service token: %w", err)
		}
		if !ep.MDSTokenFile {
			c.logger().Warn("stage1 takes the metadata service token on its command line, where local users can read it; use --mds-register=false to avoid it",
				"pod", p.UUID, "annotation", stage1.AnnotationMDSTokenFile)
			ro.Args.MDSToken = tok
		}
	}
	if ro.Args.LocalConfig == "" {
		ro.Args.LocalConfig = c.LocalConfig
	}
	argv, dropped := ro.Args.Argv(ep.Version)
	for _, d := range dropped {
		c.logger().Warn("stage1 does not support this option; dropped", "option", d, "interface_version", ep.Version)
	}
	if ro.UUIDFileSave != "" {
		if err := atomicfile.WriteFile(ro.UUIDFileSave, []byte(p.UUID), 0o644); err != nil {
			return fmt.Errorf("--uuid-file-save: %w", err)
		}
	}
	fd := int(p.Lock().Fd())
	// The lock fd must survive exec; everything else Go opened is
	// close-on-exec already.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	if err := os.Chdir(p.Path()); err != nil {
		return err
	}
	env := append(os.Environ(), stage1.EnvLockFD+"="+strconv.Itoa(fd))
	err = unix.Exec(entry, append([]string{entry}, argv...), env)
	return fmt.Errorf("exec stage1 %s: %w", entry, err)
}
