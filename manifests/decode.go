package manifests

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
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

// probeIsolator is an isolator as registerUnknownIsolators reads it.
type probeIsolator struct {
	Name  string           `json:"name"`
	Value *json.RawMessage `json:"value"`
}

// registerUnknownIsolators reads the isolators of an image manifest, pod
// manifest or {"app": ...} and registers a pass-through constructor for every
// isolator name the library does not know. It refuses an isolator without a
// value: appc v0.8.11's Isolator.UnmarshalJSON dereferences the missing value
// and panics (found by FuzzDecodeImage). It fails only where the library's
// decode would fail too.
func registerUnknownIsolators(b []byte) error {
	var probe struct {
		App *struct {
			Isolators []probeIsolator `json:"isolators"`
		} `json:"app"`
		Apps []struct {
			App *struct {
				Isolators []probeIsolator `json:"isolators"`
			} `json:"app"`
		} `json:"apps"`
		Isolators []probeIsolator `json:"isolators"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	all := probe.Isolators
	if probe.App != nil {
		all = append(all, probe.App.Isolators...)
	}
	for _, a := range probe.Apps {
		if a.App != nil {
			all = append(all, a.App.Isolators...)
		}
	}
	for _, i := range all {
		if i.Value == nil {
			return fmt.Errorf("isolator %q: no value", i.Name)
		}
		if n, err := types.NewACIdentifier(i.Name); err == nil {
			if _, res := types.ResourceIsolatorNames[*n]; res {
				if err := checkQuantities(*i.Value); err != nil {
					return fmt.Errorf("isolator %q: %w", i.Name, err)
				}
			}
		}
	}
	for _, i := range all {
		n, err := types.NewACIdentifier(i.Name)
		if err != nil {
			return fmt.Errorf("isolator %q: %w", i.Name, err)
		}
		if !Known(*n) {
			types.AddIsolatorValueConstructor(*n, func() types.IsolatorValue { return &unknownIsolator{} })
		}
	}
	return nil
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
	if err := registerUnknownIsolators(b); err != nil {
		return nil, fmt.Errorf("image manifest: %w", err)
	}
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
	if err := registerUnknownIsolators(b); err != nil {
		return nil, fmt.Errorf("pod manifest: %w", err)
	}
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
	if err := registerUnknownIsolators([]byte(`{"app":` + string(b) + `}`)); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
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

// maxQuantityExponent bounds the decimal exponent of a resource quantity
// ("1e9"): the appc library's quantity parser computes 10^exponent exactly,
// so "1e77777777720" in a hostile manifest made decoding run for ever
// (found by FuzzParseCPU). Real limits need at most exa (10^18).
const maxQuantityExponent = 30

// quantityExponent matches a quantity's decimal exponent suffix.
var quantityExponent = regexp.MustCompile(`[eE]([+-]?[0-9]+)$`)

// checkQuantities refuses, before the appc library parses them, the
// quantity strings of a resource isolator's value that would take it
// unbounded time: longer than 64 bytes, or with a decimal exponent beyond
// maxQuantityExponent.
func checkQuantities(value json.RawMessage) error {
	var fields map[string]any
	if json.Unmarshal(value, &fields) != nil {
		return nil // not an object: the library's own decode refuses it
	}
	for k, v := range fields {
		q, ok := v.(string)
		if !ok {
			continue
		}
		if err := CheckQuantity(q); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// CheckQuantity refuses a quantity string that the appc (Kubernetes)
// quantity parser would take unbounded time or memory over: longer than 64
// bytes, or with a decimal exponent beyond maxQuantityExponent. Call it
// before resource.ParseQuantity on untrusted input.
func CheckQuantity(q string) error {
	if len(q) > 64 {
		return fmt.Errorf("quantity longer than 64 bytes")
	}
	if m := quantityExponent.FindStringSubmatch(q); m != nil {
		e, err := strconv.Atoi(m[1])
		if err != nil || e > maxQuantityExponent || e < -maxQuantityExponent {
			return fmt.Errorf("quantity %q has an exponent beyond ±%d", q, maxQuantityExponent)
		}
	}
	return nil
}
