// Package signing owns image trust: the prefix-scoped trust store under
// trustedkeys/ (root.d and prefix.d, local config overriding system config, an
// empty local file masking a system key), the keyring that applies to an image
// name, and OpenPGP detached signatures (verify and sign).
package signing
