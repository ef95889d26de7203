package signing

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// key is a test release key.
type key struct {
	pub  minisign.PublicKey
	priv minisign.PrivateKey
}

func newKey(t testing.TB) key {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return key{pub, priv}
}

// TestSignVerify checks that what SignReader writes, Verify accepts by its
// signed digest, and refuses for other bytes or another binding.
func TestSignVerify(t *testing.T) {
	k := newKey(t)
	data := []byte("#!/bin/sh\necho 1.1.0\n")
	m := Meta{Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64"}
	sig, err := SignReader(k.priv, bytes.NewReader(data), m)
	if err != nil {
		t.Fatal(err)
	}
	if NeedsPrehash(sig) {
		t.Fatal("NeedsPrehash = true for a signature with a signed digest")
	}
	kr, err := NewKeyring([]string{k.pub.String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	if err := kr.Verify(nil, sig, m, sum, int64(len(data))); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := kr.Verify(nil, sig, m, sum, int64(len(data))+1); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify of another size = %v, want ErrSignature", err)
	}
	other := m
	other.Version = "9.9.9"
	if err := kr.Verify(nil, sig, other, sum, int64(len(data))); !errors.Is(err, ErrMetadata) {
		t.Errorf("Verify as another version = %v, want ErrMetadata", err)
	}
}

func TestTrustedCommentRoundTrip(t *testing.T) {
	c := TrustedComment("AD", "1.2.3", "windows", "amd64")
	if want := "poolagent-artifact name=AD version=1.2.3 os=windows arch=amd64"; c != want {
		t.Fatalf("TrustedComment = %q, want %q", c, want)
	}
	m, err := ParseTrustedComment(c)
	if err != nil {
		t.Fatal(err)
	}
	if m != (Meta{"AD", "1.2.3", "windows", "amd64"}) {
		t.Fatalf("parsed %+v", m)
	}
	sha := strings.Repeat("ab", 32)
	d := TrustedCommentWithDigest("AD", "1.2.3", "windows", "amd64", strings.ToUpper(sha), 42)
	b, err := parseBinding(d)
	if err != nil || b.Meta != m || b.SHA256 != sha || b.Size != 42 {
		t.Fatalf("parseBinding(%q) = %+v, %v", d, b, err)
	}
}

func TestParseTrustedCommentRejects(t *testing.T) {
	for _, c := range []string{
		"",
		"timestamp:1700000000", // minisign's default comment
		"poolagent-artifact name=AD version=1.0 os=linux",
		"poolagent-artifact name=AD version=1.0 os=linux arch=amd64 extra=1",
		"poolagent-artifact name=AD name=LDAP version=1.0 os=linux arch=amd64",
		"poolagent-artifact name= version=1.0 os=linux arch=amd64",
		"poolagent-artifactx name=AD version=1.0 os=linux arch=amd64",
		"poolagent-artifact name=AD version=1.0 os=linux arch=amd64 sha256=" + strings.Repeat("a", 64),
		"poolagent-artifact name=AD version=1.0 os=linux arch=amd64 size=10",
		"poolagent-artifact name=AD version=1.0 os=linux arch=amd64 sha256=xyz size=10",
		"poolagent-artifact name=AD version=1.0 os=linux arch=amd64 sha256=" + strings.Repeat("g", 64) + " size=10",
		"poolagent-artifact name=AD version=1.0 os=linux arch=amd64 sha256=" + strings.Repeat("a", 64) + " size=-1",
	} {
		if _, err := ParseTrustedComment(c); err == nil {
			t.Errorf("ParseTrustedComment(%q) = nil error", c)
		}
	}
}

func TestNewKeyring(t *testing.T) {
	a, b := newKey(t), newKey(t)
	pubFile, _ := a.pub.MarshalText() // with its comment line, as in a .pub file
	for _, tc := range []struct {
		name    string
		keys    []string
		revoked []string
		ok      bool
	}{
		{"one key", []string{a.pub.String()}, nil, true},
		{"pub file text", []string{string(pubFile)}, nil, true},
		{"rotation", []string{a.pub.String(), b.pub.String()}, []string{FormatKeyID(a.pub.ID())}, true},
		{"no keys", nil, nil, false},
		{"garbage key", []string{"not a key"}, nil, false},
		{"bad revoked id", []string{a.pub.String()}, []string{"xyz"}, false},
		{"all revoked", []string{a.pub.String()}, []string{FormatKeyID(a.pub.ID())}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewKeyring(tc.keys, tc.revoked)
			if (err == nil) != tc.ok {
				t.Fatalf("NewKeyring: err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
