package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"aead.dev/minisign"
	"github.com/poolagent/poolagent/signing"
)

// readPassword returns the key password from a file, or "" for none.
func readPassword(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// cmdKeyGenerate writes a minisign key pair for signing releases.
func cmdKeyGenerate(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("key generate", flag.ContinueOnError)
	out := fs.String("out", "", "path prefix: writes PREFIX.pub and PREFIX.key")
	pwFile := fs.String("password-file", "", "encrypt the private key with the password in this file (recommended)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"--out is required"}
	}
	pw, err := readPassword(*pwFile)
	if err != nil {
		return err
	}
	pub, priv, err := signing.GenerateKey()
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	var keyText []byte
	if pw != "" {
		keyText, err = minisign.EncryptKey(pw, priv)
	} else {
		keyText, err = priv.MarshalText()
	}
	if err != nil {
		return fmt.Errorf("encode private key: %w", err)
	}
	pubText, _ := pub.MarshalText()
	for _, p := range []string{*out + ".key", *out + ".pub"} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: refusing to overwrite a key", p)
		}
	}
	if err := os.WriteFile(*out+".key", append(keyText, '\n'), 0o600); err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	if err := os.WriteFile(*out+".pub", append(pubText, '\n'), 0o644); err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	// The line an operator pins in poolagent's trusted_keys.
	_, err = fmt.Fprintln(stdout, pub.String())
	return err
}

// loadPrivateKey reads a minisign private key, decrypting it if needed.
func loadPrivateKey(path, pwFile string) (minisign.PrivateKey, error) {
	var priv minisign.PrivateKey
	b, err := os.ReadFile(path)
	if err != nil {
		return priv, fmt.Errorf("read private key: %w", err)
	}
	if minisign.IsEncrypted(b) {
		pw, err := readPassword(pwFile)
		if err != nil {
			return priv, err
		}
		if pw == "" {
			return priv, errors.New("the private key is encrypted: give --password-file")
		}
		if priv, err = minisign.DecryptKey(pw, b); err != nil {
			return priv, fmt.Errorf("decrypt private key: %w", err)
		}
		return priv, nil
	}
	if err := priv.UnmarshalText(b); err != nil {
		return priv, fmt.Errorf("parse private key %s: %w", path, err)
	}
	return priv, nil
}

// cmdReleaseSign writes FILE.minisig: a minisign signature whose trusted
// comment binds the file to a name, version and platform and carries its
// SHA-256 and size.
func cmdReleaseSign(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("release sign", flag.ContinueOnError)
	key := fs.String("key", "", "the minisign private key (from key generate)")
	pwFile := fs.String("password-file", "", "the private key's password, if it is encrypted")
	var m signing.Meta
	var file string
	fs.StringVar(&m.Name, "name", "", "an agent type (AD, LDAP, ...) or poolagent")
	fs.StringVar(&m.Version, "version", "", "the release's version")
	fs.StringVar(&m.OS, "os", "", "GOOS the artifact runs on")
	fs.StringVar(&m.Arch, "arch", "", "GOARCH the artifact runs on")
	fs.StringVar(&file, "file", "", "the artifact to sign")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" || file == "" || m.Name == "" || m.Version == "" || m.OS == "" || m.Arch == "" {
		return usageError{"--key, --file, --name, --version, --os and --arch are required"}
	}
	priv, err := loadPrivateKey(*key, *pwFile)
	if err != nil {
		return err
	}
	sig, err := signing.Sign(priv, file, m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file+".minisig", sig, 0o644); err != nil {
		return fmt.Errorf("write signature: %w", err)
	}
	_, err = fmt.Fprintln(stdout, file+".minisig")
	return err
}
