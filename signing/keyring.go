package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"aead.dev/minisign"
)

// Keyring is the agent's trust root: the minisign public keys pinned in its
// own config, minus the revoked key ids. Nothing the server sends can add
// to it.
type Keyring struct {
	keys    map[uint64]minisign.PublicKey
	raw     map[uint64]ed25519.PublicKey // the same keys, to check comment signatures
	revoked map[uint64]bool
}

// NewKeyring parses pinned public keys (the base64 line of a minisign .pub
// file, with or without its comment line) and revoked key ids (hex, as
// minisign prints them). At least one usable key is required.
func NewKeyring(pinned, revokedIDs []string) (*Keyring, error) {
	k := &Keyring{keys: map[uint64]minisign.PublicKey{}, raw: map[uint64]ed25519.PublicKey{}, revoked: map[uint64]bool{}}
	for _, s := range revokedIDs {
		id, err := strconv.ParseUint(strings.TrimSpace(s), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("revoked key id %q: want hex like minisign prints: %w", s, err)
		}
		k.revoked[id] = true
	}
	for i, s := range pinned {
		var pk minisign.PublicKey
		if err := pk.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
			return nil, fmt.Errorf("trusted key %d: %w", i, err)
		}
		k.keys[pk.ID()] = pk
		raw, err := rawKey(pk)
		if err != nil {
			return nil, fmt.Errorf("trusted key %d: %w", i, err)
		}
		k.raw[pk.ID()] = raw
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("no trusted keys: pin at least one minisign public key")
	}
	usable := 0
	for id := range k.keys {
		if !k.revoked[id] {
			usable++
		}
	}
	if usable == 0 {
		return nil, fmt.Errorf("every trusted key is revoked: pin a current key")
	}
	return k, nil
}

// rawKey extracts the Ed25519 key from a minisign public key: its text is
// base64 of "Ed" || key id (8 bytes) || key (32 bytes).
func rawKey(pk minisign.PublicKey) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(pk.String())
	if err != nil || len(b) != 2+8+ed25519.PublicKeySize {
		return nil, fmt.Errorf("unexpected minisign public key encoding")
	}
	return ed25519.PublicKey(b[10:]), nil
}

// Verify checks a minisign signature and the expected metadata. A trusted
// comment that carries the artifact's SHA-256 and size is authenticated by
// its comment signature and must match sum and n (the digest of the bytes
// received); otherwise the pre-hashed signature is checked against the
// digest state held by mr (fed with the artifact's bytes).
func (k *Keyring) Verify(mr DigestVerifier, sigText []byte, want Meta, sum string, n int64) error {
	if len(sigText) == 0 {
		return fmt.Errorf("verify %s: no signature in the job: %w", want, ErrSignature)
	}
	var sig minisign.Signature
	if err := sig.UnmarshalText(sigText); err != nil {
		return fmt.Errorf("verify %s: malformed signature: %w: %w", want, err, ErrSignature)
	}
	id := FormatKeyID(sig.KeyID)
	if k.revoked[sig.KeyID] {
		return fmt.Errorf("verify %s: signed by revoked key %s: %w", want, id, ErrSignature)
	}
	pk, ok := k.keys[sig.KeyID]
	if !ok {
		return fmt.Errorf("verify %s: signed by key %s, which is not pinned in the config: %w", want, id, ErrUntrustedKey)
	}
	if sig.Algorithm != minisign.HashEdDSA {
		return fmt.Errorf("verify %s: legacy (non-prehashed) signature; re-sign with minisign -H: %w", want, ErrSignature)
	}
	if b, err := parseBinding(sig.TrustedComment); err == nil && b.SHA256 != "" {
		msg := append(append([]byte{}, sig.Signature[:]...), sig.TrustedComment...)
		if !ed25519.Verify(k.raw[sig.KeyID], msg, sig.CommentSignature[:]) {
			return fmt.Errorf("verify %s: the trusted comment's signature by key %s does not verify: %w", want, id, ErrSignature)
		}
		if b.Meta != want {
			return fmt.Errorf("verify %s: artifact is signed as %s: %w", want, b.Meta, ErrMetadata)
		}
		if b.SHA256 != sum || b.Size != n {
			return fmt.Errorf("verify %s: signed digest sha256 %s (%d bytes) does not match the artifact's %s (%d bytes): %w",
				want, b.SHA256, b.Size, sum, n, ErrSignature)
		}
		return nil
	}
	if mr == nil || !mr.Verify(pk, sigText) {
		return fmt.Errorf("verify %s: signature by key %s does not match the artifact or its trusted comment: %w", want, id, ErrSignature)
	}
	// The comment is authentic only now that the signature verified.
	got, err := ParseTrustedComment(sig.TrustedComment)
	if err != nil {
		return fmt.Errorf("verify %s: %w: %w", want, err, ErrMetadata)
	}
	if got != want {
		return fmt.Errorf("verify %s: artifact is signed as %s: %w", want, got, ErrMetadata)
	}
	return nil
}

// DigestVerifier is the part of minisign.Reader Verify needs: the digest
// state of the artifact's bytes, for signatures without a signed digest.
type DigestVerifier interface {
	Verify(minisign.PublicKey, []byte) bool
}
