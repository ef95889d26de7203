package signing

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"aead.dev/minisign"
)

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
