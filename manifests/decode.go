package manifests

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// MaxManifestSize bounds how much of an untrusted manifest is read.
const MaxManifestSize = 1 << 20

// unknownIsolator carries an isolator whose name the appc v0.8.11 library does
// not know (e.g. os/linux/apparmor-profile, added to the spec later). The
// library's IsolatorValue interface has an unexported method, so the type
// borrows it by embedding a library type; the value is kept raw and
// re-marshals unchanged.
type unknownIsolator struct {
	types.LinuxNoNewPrivileges
	raw json.RawMessage
}

func (u *unknownIsolator) UnmarshalJSON(b []byte) error {
	u.raw = append(json.RawMessage(nil), b...)
	return nil
}

func (u *unknownIsolator) AssertValid() error { return nil }

func (u *unknownIsolator) Conflicts() []types.ACIdentifier { return nil }

// decodeMu serializes registration into the appc library's global isolator
// table with the decodes that read it.
var decodeMu sync.Mutex

// registerUnknownIsolators walks any JSON value and registers a pass-through
// constructor for every isolator name the library does not know.
func registerUnknownIsolators(b []byte) {
	var probe struct {
		App *struct {
			Isolators []struct{ Name types.ACIdentifier }
		} `json:"app"`
		Apps []struct {
			App *struct {
				Isolators []struct{ Name types.ACIdentifier }
			} `json:"app"`
		} `json:"apps"`
		Isolators []struct{ Name types.ACIdentifier } `json:"isolators"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return // the real decode reports the error
	}
	names := []types.ACIdentifier{}
	for _, i := range probe.Isolators {
		names = append(names, i.Name)
	}
	if probe.App != nil {
		for _, i := range probe.App.Isolators {
			names = append(names, i.Name)
		}
	}
	for _, a := range probe.Apps {
		if a.App != nil {
			for _, i := range a.App.Isolators {
				names = append(names, i.Name)
			}
		}
	}
	for _, n := range names {
		if !Known(n) {
			types.AddIsolatorValueConstructor(n, func() types.IsolatorValue { return &unknownIsolator{} })
		}
	}
}

// Known reports whether name is an isolator the appc library itself knows.
func Known(name types.ACIdentifier) bool {
	_, res := types.ResourceIsolatorNames[name]
	_, lin := types.LinuxIsolatorNames[name]
	_, unx := types.UnixIsolatorNames[name]
	return res || lin || unx
}

// IsUnknown reports whether an isolator was decoded as an unknown pass-through.
func IsUnknown(i *types.Isolator) bool {
	_, ok := i.Value().(*unknownIsolator)
	return ok
}

// DecodeImage decodes and validates an image manifest.
func DecodeImage(b []byte) (*schema.ImageManifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("image manifest: larger than %d bytes", MaxManifestSize)
	}
	decodeMu.Lock()
	defer decodeMu.Unlock()
	registerUnknownIsolators(b)
	var im schema.ImageManifest
	if err := im.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("image manifest: %w", err)
	}
	return &im, nil
}

// DecodePod decodes and validates a pod manifest.
func DecodePod(b []byte) (*schema.PodManifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("pod manifest: larger than %d bytes", MaxManifestSize)
	}
	decodeMu.Lock()
	defer decodeMu.Unlock()
	registerUnknownIsolators(b)
	var pm schema.PodManifest
	if err := pm.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("pod manifest: %w", err)
	}
	return &pm, nil
}

// DecodeApp decodes an appc app section (as given to --pod-manifest or patches).
func DecodeApp(b []byte) (*types.App, error) {
	decodeMu.Lock()
	defer decodeMu.Unlock()
	registerUnknownIsolators([]byte(`{"app":` + string(b) + `}`))
	var a types.App
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return &a, nil
}

// Unapplied lists, by name, the isolators in isos that are not in applied.
func Unapplied(isos types.Isolators, applied map[types.ACIdentifier]bool) []string {
	var out []string
	for _, i := range isos {
		if !applied[i.Name] {
			out = append(out, string(i.Name))
		}
	}
	return out
}
