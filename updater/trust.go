package updater

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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

// TrustedCommentWithDigest is TrustedComment plus the artifact's SHA-256
// and size:
//
//	poolagent-artifact name=<name> version=<version> os=<os> arch=<arch> sha256=<hex> size=<bytes>
//
// The trusted comment is authenticated by minisign's comment signature, so
// an agent that verifies it knows the artifact's SHA-256 without the
// BLAKE2b pre-hash of the whole file (the slowest part of verification);
// the SHA-256 it computes anyway then binds the bytes. The signature is
// still a standard minisign signature of the file: `minisign -V` checks it.
func TrustedCommentWithDigest(name, version, goos, goarch, sha string, size int64) string {
	return TrustedComment(name, version, goos, goarch) + " sha256=" + strings.ToLower(sha) + " size=" + strconv.FormatInt(size, 10)
}

// binding is a parsed trusted comment.
type binding struct {
	Meta
	SHA256 string // "" when the comment carries no digest
	Size   int64
}

// ParseTrustedComment is the inverse of TrustedComment. Fields must appear
// exactly once, in any order; unknown fields are refused so that a future
// binding cannot be silently ignored by an old agent.
func ParseTrustedComment(s string) (Meta, error) {
	b, err := parseBinding(s)
	return b.Meta, err
}

func parseBinding(s string) (binding, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || fields[0] != trustedCommentPrefix {
		return binding{}, fmt.Errorf("trusted comment %q: want prefix %q", s, trustedCommentPrefix)
	}
	var b binding
	m := &b.Meta
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || v == "" || seen[k] {
			return binding{}, fmt.Errorf("trusted comment %q: bad or repeated field %q", s, f)
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
		case "sha256":
			if len(v) != 64 {
				return binding{}, fmt.Errorf("trusted comment %q: sha256 is not 64 hex digits", s)
			}
			if _, err := hex.DecodeString(v); err != nil {
				return binding{}, fmt.Errorf("trusted comment %q: sha256 is not hex", s)
			}
			b.SHA256 = strings.ToLower(v)
		case "size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return binding{}, fmt.Errorf("trusted comment %q: bad size", s)
			}
			b.Size = n
		default:
			return binding{}, fmt.Errorf("trusted comment %q: unknown field %q", s, k)
		}
	}
	if !seen["name"] || !seen["version"] || !seen["os"] || !seen["arch"] {
		return binding{}, fmt.Errorf("trusted comment %q: want name, version, os and arch", s)
	}
	if seen["sha256"] != seen["size"] {
		return binding{}, fmt.Errorf("trusted comment %q: sha256 and size go together", s)
	}
	return b, nil
}

// needsPrehash reports whether verifying sigText needs minisign's BLAKE2b
// pre-hash of the artifact: when its trusted comment carries no SHA-256.
// The comment is not trusted here; it only picks the hashers, and verify
// checks it.
func needsPrehash(sigText []byte) bool {
	var sig minisign.Signature
	if err := sig.UnmarshalText(sigText); err != nil {
		return true
	}
	b, err := parseBinding(sig.TrustedComment)
	return err != nil || b.SHA256 == ""
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

// SignReader is Sign for an arbitrary stream. The trusted comment carries
// the artifact's SHA-256 and size (TrustedCommentWithDigest).
func SignReader(priv minisign.PrivateKey, r io.Reader, m Meta) ([]byte, error) {
	h := sha256.New()
	mr := minisign.NewReader(io.TeeReader(r, h))
	n, err := io.Copy(io.Discard, mr)
	if err != nil {
		return nil, fmt.Errorf("sign %s: read artifact: %w", m, err)
	}
	untrusted := "signature from poolagent key " + FormatKeyID(priv.ID())
	comment := TrustedCommentWithDigest(m.Name, m.Version, m.OS, m.Arch, hex.EncodeToString(h.Sum(nil)), n)
	return mr.SignWithComments(priv, comment, untrusted), nil
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

// verify checks a minisign signature and the expected metadata. A trusted
// comment that carries the artifact's SHA-256 and size is authenticated by
// its comment signature and must match sum and n (the digest of the bytes
// received); otherwise the pre-hashed signature is checked against the
// digest state held by mr (fed with the artifact's bytes).
func (k *Keyring) verify(mr digestVerifier, sigText []byte, want Meta, sum string, n int64) error {
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

// digestVerifier is the part of minisign.Reader verify needs.
type digestVerifier interface {
	Verify(minisign.PublicKey, []byte) bool
}
