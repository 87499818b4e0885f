package seccomp

import (
	"runtime"
	"slices"
	"strings"
)

// Allowed returns, sorted, the syscalls of the running architecture that a
// filter built from (mode, names) lets through, with Build's rules (the
// essential syscalls are always allowed). It fails exactly when Build fails.
// stage0 uses it to compare an image's set with the default filter.
func Allowed(mode Mode, names []string) ([]string, error) {
	return allowed(runtime.GOARCH, mode, names)
}

func allowed(arch string, mode Mode, names []string) ([]string, error) {
	if _, err := build(arch, mode, names, ""); err != nil {
		return nil, err
	}
	table := sysnums[arch]
	in := map[string]bool{}
	for _, name := range names {
		if strings.HasPrefix(name, "@") {
			members, _ := group(name, arch)
			for _, m := range members {
				if _, ok := table[m]; ok {
					in[m] = true
				}
			}
			continue
		}
		in[name] = true
	}
	for _, name := range essential {
		if _, ok := table[name]; ok {
			in[name] = mode == Retain
		}
	}
	var out []string
	for name := range table {
		if in[name] == (mode == Retain) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
