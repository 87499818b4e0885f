package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rkt-ng/rkt/stage0"
)

// appFlags are rkt's per-app flags. Before the first image they set defaults
// for every app; after an image they apply to that image only.
type appFlags struct {
	exec, name, workingDir, user, group, signature string
	memory, cpu, seccomp                           string
	cpuShares, oomScoreAdj                         int
	suppGIDs                                       []int
	readOnly                                       bool
	env, annotations, userAnnotations, userLabels  []string
	mounts, capsRetain, capsRemove                 []string
}

func (a *appFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&a.exec, "exec", "", "override the exec command of the app")
	fs.StringVar(&a.name, "name", "", "name of the app")
	fs.StringVar(&a.workingDir, "working-dir", "", "override the working directory of the app")
	fs.StringVar(&a.user, "user", "", "user override for the app (number, name or path)")
	fs.StringVar(&a.group, "group", "", "group override for the app (number, name or path)")
	fs.StringVar(&a.signature, "signature", "", "local signature file of the image")
	fs.StringVar(&a.memory, "memory", "", "memory limit for the app (e.g. 512M, 1Gi)")
	fs.StringVar(&a.cpu, "cpu", "", "CPU limit for the app (e.g. 500m, 2)")
	fs.StringVar(&a.seccomp, "seccomp", "", "seccomp filter override: mode=retain|remove[,errno=E],SYSCALL...")
	fs.IntVar(&a.cpuShares, "cpu-shares", 0, "CPU shares for the app")
	fs.IntVar(&a.oomScoreAdj, "oom-score-adj", 0, "oom score adjustment for the app")
	fs.IntSliceVar(&a.suppGIDs, "supplementary-gids", nil, "supplementary group IDs for the app")
	fs.BoolVar(&a.readOnly, "readonly-rootfs", false, "mount the app's rootfs read-only")
	fs.StringArrayVar(&a.env, "environment", nil, "set an environment variable for the app (NAME=VALUE)")
	fs.StringArrayVar(&a.annotations, "annotation", nil, "set an app annotation (NAME=VALUE)")
	fs.StringArrayVar(&a.userAnnotations, "user-annotation", nil, "set an app user annotation (NAME=VALUE)")
	fs.StringArrayVar(&a.userLabels, "user-label", nil, "set an app user label (NAME=VALUE)")
	fs.StringArrayVar(&a.mounts, "mount", nil, "mount a volume into the app: volume=NAME,target=PATH")
	fs.StringArrayVar(&a.capsRetain, "caps-retain", nil, "capabilities to retain")
	fs.StringArrayVar(&a.capsRemove, "caps-remove", nil, "capabilities to remove")
	registerDeprecatedAppFlags(fs, a)
}

func kvMap(flag string, in []string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want NAME=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

// apply sets on spec every flag that was given in fs.
func (a *appFlags) apply(fs *pflag.FlagSet, spec *stage0.AppSpec) error {
	var err error
	changed := func(n string) bool { return fs.Changed(n) }
	if changed("exec") {
		spec.Exec = a.exec
	}
	if changed("name") {
		spec.Name = a.name
	}
	if changed("working-dir") {
		spec.WorkingDir = a.workingDir
	}
	if changed("user") {
		spec.User = a.user
	}
	if changed("group") {
		spec.Group = a.group
	}
	if changed("signature") {
		spec.Signature = a.signature
	}
	if changed("memory") {
		spec.Memory = a.memory
	}
	if changed("cpu") {
		spec.CPU = a.cpu
	}
	if changed("seccomp") {
		spec.Seccomp = a.seccomp
	}
	if changed("cpu-shares") {
		v := a.cpuShares
		spec.CPUShares = &v
	}
	if changed("oom-score-adj") {
		v := a.oomScoreAdj
		spec.OOMScoreAdj = &v
	}
	if changed("supplementary-gids") {
		spec.SupplementaryGIDs = a.suppGIDs
	}
	if changed("readonly-rootfs") {
		spec.ReadOnlyRootfs = a.readOnly
	}
	if changed("environment") {
		spec.Environment = append(spec.Environment, a.env...)
	}
	if changed("caps-retain") || changed("cap-retain") {
		spec.CapsRetain = a.capsRetain
	}
	if changed("caps-remove") || changed("cap-remove") {
		spec.CapsRemove = a.capsRemove
	}
	for _, m := range a.mounts {
		mm, err := stage0.ParseMount(m)
		if err != nil {
			return err
		}
		spec.Mounts = append(spec.Mounts, mm)
	}
	if spec.Annotations, err = mergeKV("annotation", spec.Annotations, a.annotations); err != nil {
		return err
	}
	if spec.UserAnnotations, err = mergeKV("user-annotation", spec.UserAnnotations, a.userAnnotations); err != nil {
		return err
	}
	spec.UserLabels, err = mergeKV("user-label", spec.UserLabels, a.userLabels)
	return err
}

func mergeKV(flag string, dst map[string]string, in []string) (map[string]string, error) {
	m, err := kvMap(flag, in)
	if err != nil || m == nil {
		return dst, err
	}
	if dst == nil {
		dst = map[string]string{}
	}
	for k, v := range m {
		dst[k] = v
	}
	return dst, nil
}

// parseApps splits `[APPFLAGS] IMAGE [APPFLAGS] [-- ARGS] [--- IMAGE ...]`
// into app specs. defaults holds the flags given before the first image.
// shared holds the global and pod flags, which rkt 1.30 also accepted after
// an image (`rkt run IMAGE --debug`); nil means none.
func parseApps(args []string, defaults stage0.AppSpec, shared *pflag.FlagSet) ([]stage0.AppSpec, error) {
	var apps []stage0.AppSpec
	for len(args) > 0 {
		if args[0] == "---" {
			args = args[1:]
			continue
		}
		if strings.HasPrefix(args[0], "-") {
			return nil, &usageError{fmt.Errorf("unexpected %q where an image was expected", args[0])}
		}
		spec := defaults
		spec.Image = args[0]
		spec.Environment = append([]string(nil), defaults.Environment...)
		seg := args[1:]
		end := len(seg)
		for i, a := range seg {
			if a == "---" {
				end = i
				break
			}
		}
		rest := seg[end:]
		seg = seg[:end]
		var af appFlags
		fs := pflag.NewFlagSet("app", pflag.ContinueOnError)
		fs.SetInterspersed(false)
		af.register(fs)
		if shared != nil {
			fs.AddFlagSet(shared)
		}
		if err := fs.Parse(seg); err != nil {
			return nil, &usageError{fmt.Errorf("image %s: %w", spec.Image, err)}
		}
		if err := af.apply(fs, &spec); err != nil {
			return nil, err
		}
		left := fs.Args()
		if consumed := len(seg) - len(left); consumed > 0 && seg[consumed-1] == "--" {
			spec.HasArgs, spec.Args = true, left
			left = nil
		}
		apps = append(apps, spec)
		args = append(left, rest...)
	}
	return apps, nil
}
