package main

import (
	"encoding/json"

	"github.com/rkt-ng/rkt/stage0/images"
	"github.com/rkt-ng/rkt/stage1/ocibundle"
)

// bundleConfig is the config.json of `rkt image export --format=oci-bundle`.
// and `rkt export --format=oci-bundle`.
func bundleConfig(a images.BundleApp) ([]byte, error) {
	s, err := ocibundle.Config(ocibundle.Input{Image: a.Image, ImageID: a.ImageID, App: a.App, Options: a.Options, Rootfs: a.Rootfs})
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
