package updater

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"aead.dev/minisign"
)

// trustedCommentPrefix starts every trusted comment poolagent signs.
const trustedCommentPrefix = "poolagent-artifact"

// Meta is what a signature binds an artifact to.
type Meta struct {
	Name    string // program name, e.g. "AD"
	Version string // e.g. "1.1.0"
	OS      string // GOOS spelling: "linux", "windows", "darwin"
	Arch    string // GOARCH spelling: "amd64", "arm64"
}

// String returns "name version os/arch" for messages.
func (m Meta) String() string {
	return m.Name + " " + m.Version + " " + m.OS + "/" + m.Arch
}

// TrustedComment returns the minisign trusted comment that binds an
// artifact to a program, version and platform:
//
//	poolagent-artifact name=<name> version=<version> os=<os> arch=<arch>
//
// The server, the release tooling and the agent all use this function, so
// the format has one definition.
func TrustedComment(name, version, goos, goarch string) string {
	return trustedCommentPrefix + " name=" + name + " version=" + version + " os=" + goos + " arch=" + goarch
}

// ParseTrustedComment is the inverse of TrustedComment. Fields must appear
// exactly once, in any order; unknown fields are refused so that a future
// binding cannot be silently ignored by an old agent.
func ParseTrustedComment(s string) (Meta, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || fields[0] != trustedCommentPrefix {
		return Meta{}, fmt.Errorf("trusted comment %q: want prefix %q", s, trustedCommentPrefix)
	}
	var m Meta
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || v == "" || seen[k] {
			return Meta{}, fmt.Errorf("trusted comment %q: bad or repeated field %q", s, f)
		}
		seen[k] = true
		switch k {
		case "name":
			m.Name = v
		case "version":
			m.Version = v
		case "os":
			m.OS = v
		case "arch":
			m.Arch = v
		default:
			return Meta{}, fmt.Errorf("trusted comment %q: unknown field %q", s, k)
		}
	}
	if len(seen) != 4 {
		return Meta{}, fmt.Errorf("trusted comment %q: want name, version, os and arch", s)
	}
	return m, nil
}

// GenerateKey returns a new minisign key pair from crypto/rand.
func GenerateKey() (minisign.PublicKey, minisign.PrivateKey, error) {
	return minisign.GenerateKey(rand.Reader)
}

// Sign returns a minisign signature (the text of a .minisig file) of the
// file at artifactPath, with m's trusted comment. The file is streamed
// (minisign's pre-hashed mode), never held in memory.
func Sign(priv minisign.PrivateKey, artifactPath string, m Meta) (sigText []byte, err error) {
	f, err := os.Open(artifactPath)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", m, err)
	}
	defer f.Close()
	return SignReader(priv, f, m)
}

// SignReader is Sign for an arbitrary stream.
func SignReader(priv minisign.PrivateKey, r io.Reader, m Meta) ([]byte, error) {
	mr := minisign.NewReader(r)
	if _, err := io.Copy(io.Discard, mr); err != nil {
		return nil, fmt.Errorf("sign %s: read artifact: %w", m, err)
	}
	untrusted := "signature from poolagent key " + FormatKeyID(priv.ID())
	return mr.SignWithComments(priv, TrustedComment(m.Name, m.Version, m.OS, m.Arch), untrusted), nil
}

// FormatKeyID spells a key id the way minisign prints it (upper-case hex).
func FormatKeyID(id uint64) string {
	return strings.ToUpper(strconv.FormatUint(id, 16))
}

// Keyring is the agent's trust root: the minisign public keys pinned in its
// own config, minus the revoked key ids. Nothing the server sends can add
// to it.
type Keyring struct {
	keys    map[uint64]minisign.PublicKey
	revoked map[uint64]bool
}

// NewKeyring parses pinned public keys (the base64 line of a minisign .pub
// file, with or without its comment line) and revoked key ids (hex, as
// minisign prints them). At least one usable key is required.
func NewKeyring(pinned, revokedIDs []string) (*Keyring, error) {
	k := &Keyring{keys: map[uint64]minisign.PublicKey{}, revoked: map[uint64]bool{}}
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

// verify checks a pre-hashed minisign signature against the digest state
// held by mr (fed with the artifact's bytes) and the expected metadata.
func (k *Keyring) verify(mr digestVerifier, sigText []byte, want Meta) error {
	if len(sigText) == 0 {
		return fmt.Errorf("verify %s: no signature in the job: %w", want, ErrSignature)
	}
	var sig minisign.Signature
	if err := sig.UnmarshalText(sigText); err != nil {
		return fmt.Errorf("verify %s: malformed signature: %v: %w", want, err, ErrSignature)
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
	if !mr.Verify(pk, sigText) {
		return fmt.Errorf("verify %s: signature by key %s does not match the artifact or its trusted comment: %w", want, id, ErrSignature)
	}
	// The comment is authentic only now that the signature verified.
	got, err := ParseTrustedComment(sig.TrustedComment)
	if err != nil {
		return fmt.Errorf("verify %s: %v: %w", want, err, ErrMetadata)
	}
	if got != want {
		return fmt.Errorf("verify %s: artifact is signed as %s: %w", want, got, ErrMetadata)
	}
	return nil
}

// digestVerifier is the part of minisign.Reader verify needs.
type digestVerifier interface {
	Verify(minisign.PublicKey, []byte) bool
}
