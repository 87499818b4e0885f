package main

import (
	"errors"

	"github.com/spf13/pflag"
)

// deprecatedFlags are the flags rkt 1.30 still accepted with a deprecation
// notice (pflag's "Flag --X has been deprecated, ..." on stderr, the
// notice rkt printed): --store-only and --no-store of run, prepare and
// fetch.
type deprecatedFlags struct {
	storeOnly, noStore bool
}

func (d *deprecatedFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&d.storeOnly, "store-only", false, "use only available images in the store (do not discover or download from remote URLs)")
	fs.BoolVar(&d.noStore, "no-store", false, "fetch images ignoring the local store")
	fs.MarkDeprecated("store-only", "please use --pull-policy=never")
	fs.MarkDeprecated("no-store", "please use --pull-policy=update")
}

// pullPolicy turns the deprecated flags into the pull policy they stand
// for; with neither it returns policy unchanged.
func (d *deprecatedFlags) pullPolicy(policy string) (string, error) {
	switch {
	case d.storeOnly && d.noStore:
		return "", &usageError{errors.New("both --store-only and --no-store specified")}
	case d.storeOnly:
		return "never", nil
	case d.noStore:
		return "update", nil
	}
	return policy, nil
}

// registerDeprecatedAppFlags adds rkt 1.30's --cap-retain and --cap-remove,
// old names of --caps-retain and --caps-remove, to the app flags.
func registerDeprecatedAppFlags(fs *pflag.FlagSet, a *appFlags) {
	fs.StringArrayVar(&a.capsRetain, "cap-retain", nil, "capability to retain")
	fs.StringArrayVar(&a.capsRemove, "cap-remove", nil, "capability to remove")
	fs.MarkDeprecated("cap-retain", "use --caps-retain instead")
	fs.MarkDeprecated("cap-remove", "use --caps-remove instead")
}
