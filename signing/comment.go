package signing

import (
	"encoding/hex"
	"fmt"
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

// NeedsPrehash reports whether verifying sigText needs minisign's BLAKE2b
// pre-hash of the artifact: when its trusted comment carries no SHA-256.
// The comment is not trusted here; it only picks the hashers, and Verify
// checks it.
func NeedsPrehash(sigText []byte) bool {
	var sig minisign.Signature
	if err := sig.UnmarshalText(sigText); err != nil {
		return true
	}
	b, err := parseBinding(sig.TrustedComment)
	return err != nil || b.SHA256 == ""
}
