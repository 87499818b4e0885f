package images

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rkt-ng/rkt/discovery"
	"github.com/rkt-ng/rkt/signing"
)

// DiscoveredKey is a public key found through ac-discovery-pubkeys.
type DiscoveredKey struct {
	URL     string
	Armored []byte
	Info    signing.KeyInfo
}

// DiscoverKeys finds and downloads the public keys that the discovery pages
// of prefix announce (what `rkt trust --prefix NAME` without a key file
// offers to trust). Each key must parse as one usable public key. Nothing
// is trusted here.
func (c *Config) DiscoverKeys(ctx context.Context, prefix string) ([]DiscoveredKey, error) {
	if err := signing.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	opts, err := c.httpOptions()
	if err != nil {
		return nil, err
	}
	urls, err := discovery.DiscoverKeys(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	f, err := discovery.NewFetcher(opts)
	if err != nil {
		return nil, err
	}
	var out []DiscoveredKey
	for _, u := range urls {
		k, err := fetchKey(ctx, f, u)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

func fetchKey(ctx context.Context, f *discovery.Fetcher, u string) (DiscoveredKey, error) {
	b, err := f.FetchKey(ctx, u)
	if err != nil {
		return DiscoveredKey{}, err
	}
	info, err := signing.ReadKey(b)
	if err != nil {
		return DiscoveredKey{}, fmt.Errorf("key %s: %w", u, err)
	}
	return DiscoveredKey{URL: u, Armored: b, Info: info}, nil
}

// trustOnFirstUse trusts, for the image name, the keys discovered for it
// over https (--trust-keys-from-https), telling the user what it trusted.
func (c *Config) trustOnFirstUse(ctx context.Context, name string, keyURLs []string, f *discovery.Fetcher) error {
	ks := c.Keystore()
	var errs []error
	trusted := 0
	for _, u := range keyURLs {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" {
			errs = append(errs, fmt.Errorf("key %s: not https", u))
			continue
		}
		k, err := fetchKey(ctx, f, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tk, err := ks.Trust(name, k.Armored)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", u, err))
			continue
		}
		trusted++
		fmt.Fprintf(c.stderr(), "Trusting key %s (%s) for prefix %s, fetched from %s; stored at %s\n",
			strings.ToUpper(tk.Fingerprint), strings.Join(tk.UserIDs, ", "), name, u, tk.Path)
	}
	if trusted == 0 {
		if len(errs) == 0 {
			return errors.New("no key to trust")
		}
		return multiError(errs)
	}
	return nil
}
