package updater

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/poolagent/poolagent/signing"
)

// TestVerify covers the trust model on a real download: what is accepted
// and, with its failure class, what is refused.
func TestVerify(t *testing.T) {
	release, rotated, stranger, retired := newSigner(t), newSigner(t), newSigner(t), newSigner(t)
	data := readFixture(t, "agent-1.1.0.sh")
	m := meta("1.1.0")
	other := func(f func(*Meta)) Meta { x := m; f(&x); return x }
	for _, tc := range []struct {
		name string
		sig  []byte
		want error // nil: accepted
	}{
		{"signed by the release key", release.sign(t, data, m), nil},
		{"signed by the rotated-in key", rotated.sign(t, data, m), nil},
		{"no signature", nil, ErrSignature},
		{"garbage signature", []byte("untrusted comment: x\nnot base64\n"), ErrSignature},
		{"signature of other bytes", release.sign(t, append([]byte("#"), data...), m), ErrSignature},
		{"untrusted key", stranger.sign(t, data, m), ErrUntrustedKey},
		{"revoked key", retired.sign(t, data, m), ErrSignature},
		{"another program", release.sign(t, data, other(func(x *Meta) { x.Name = "LDAP" })), ErrMetadata},
		{"another version", release.sign(t, data, other(func(x *Meta) { x.Version = "1.0.9" })), ErrMetadata},
		{"another os", release.sign(t, data, other(func(x *Meta) { x.OS = "windows" })), ErrMetadata},
		{"another arch", release.sign(t, data, other(func(x *Meta) { x.Arch = "arm64" })), ErrMetadata},
		{"tampered trusted comment", tamperComment(release.sign(t, data, m)), ErrSignature},
		{"signed without a digest (minisign CLI)", release.signLegacy(t, data, m), nil},
		{"signed without a digest, other bytes", release.signLegacy(t, append([]byte("#"), data...), m), ErrSignature},
		{"signed without a digest, another version", release.signLegacy(t, data, other(func(x *Meta) { x.Version = "1.0.9" })), ErrMetadata},
		{"signed without a digest, untrusted key", stranger.signLegacy(t, data, m), ErrUntrustedKey},
		{"digest comment re-signed by another key under the release key's id", resignComment(release.sign(t, data, m)), ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			u := newTestUpdater(t, []string{release.pubText(), rotated.pubText(), retired.pubText()}, func(c *Config) {
				c.RevokedKeyIDs = []string{signing.FormatKeyID(retired.pub.ID())}
			})
			job := Job{ID: "j", Artifact: Artifact{Meta: m, URL: srv.put("/a", data), Size: int64(len(data)), SHA256: sum(data), Signature: tc.sig}}
			f, err := u.Fetch(t.Context(), job, Target{}, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if f.SHA256 != sum(data) {
					t.Fatalf("Fetched sha %s", f.SHA256)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Fetch error = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "download artifact AD 1.1.0: ") {
				t.Errorf("error does not name the operation: %v", err)
			}
		})
	}
}

// tamperComment rewrites the trusted comment line of a signature, keeping
// its syntax valid.
func tamperComment(sig []byte) []byte {
	lines := strings.Split(string(sig), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "trusted comment: ") {
			lines[i] = "trusted comment: " + signing.TrustedComment("AD", "9.9.9", "linux", "amd64")
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// resignComment keeps a signature's key id and file signature but signs
// its trusted comment with an attacker's own Ed25519 key.
func resignComment(sigText []byte) []byte {
	var sig minisign.Signature
	if err := sig.UnmarshalText(sigText); err != nil {
		panic(err)
	}
	_, attacker, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	forged := minisign.Signature{Algorithm: sig.Algorithm, KeyID: sig.KeyID, TrustedComment: sig.TrustedComment,
		UntrustedComment: sig.UntrustedComment, Signature: sig.Signature}
	copy(forged.CommentSignature[:], ed25519.Sign(attacker, append(append([]byte{}, sig.Signature[:]...), sig.TrustedComment...)))
	out, err := forged.MarshalText()
	if err != nil {
		panic(err)
	}
	return out
}
