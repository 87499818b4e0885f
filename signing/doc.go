// Package signing owns image trust: the prefix-scoped trust store under
// trustedkeys/ (root.d and prefix.d, local config overriding system config, an
// empty local file masking a system key), the keyring that applies to an image
// name, and OpenPGP detached signatures (verify and sign).
//
// The on-disk layout is rkt's: an armored public key lives in
// <configdir>/trustedkeys/root.d/<fingerprint> (trusted for every image) or
// <configdir>/trustedkeys/prefix.d/<prefix>/<fingerprint> (trusted for image
// names whose leading path components are <prefix>), where <fingerprint> is
// the lowercase hex fingerprint of the primary key. A file whose key does not
// match its name is an error, never silently skipped.
//
// Verification fails closed: a signer missing from the keyring gives an
// *UntrustedSignerError, a signature that does not match the data gives
// ErrBadSignature, and revoked or expired keys and expired signatures give
// ErrKeyRevoked or ErrExpired. Inputs from the network (keys, signatures) are
// size-bounded before parsing.
package signing
