package main

import (
	"encoding/json"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/stage1/ocibundle"
)

// bundleConfig is the config.json of `rkt image export --format=oci-bundle`.
func bundleConfig(id string, im *schema.ImageManifest, rootfs string) ([]byte, error) {
	s, err := ocibundle.Config(ocibundle.Input{Image: im, ImageID: id, Rootfs: rootfs})
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
