// Package secretbox seals credentials (passwords, tokens, registry auth) before they
// are stored, with AES-256-GCM under one 32-byte key.
//
// A sealed value is: version byte (1) || 12-byte random nonce || ciphertext || 16-byte
// tag. The additional data given to Seal (e.g. the owning container's id) is
// authenticated but not stored: Open needs the same bytes, so a sealed value copied
// to another row does not open there. With random nonces one key must seal fewer
// than 2^32 values, far beyond what moor stores.
package secretbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the key length in bytes (AES-256).
const KeySize = 32

const version1 = 1

// ErrOpen is returned by Open for any value it cannot authenticate: tampered,
// truncated, sealed under another key or with other additional data.
var ErrOpen = errors.New("secretbox: cannot open sealed value (wrong key, wrong additional data, or tampered)")

// Box seals and opens values with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD // random-nonce GCM: the nonce is prefixed to its output
	// secret is the key itself, kept only for DeriveKey: it is never
	// handed out.
	secret []byte
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secretbox: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return &Box{aead: aead, secret: bytes.Clone(key)}, nil
}

// DeriveKey returns a KeySize-byte key for another use, derived from the
// box's key with HKDF-SHA256 (no salt) under info, which names the use (e.g.
// "moor backup v1"): the box's key itself is never given out, and keys
// derived under different infos are unrelated.
func (b *Box) DeriveKey(info string) ([]byte, error) {
	if info == "" {
		return nil, errors.New("secretbox: DeriveKey needs an info naming the key's use")
	}
	return hkdf.Key(sha256.New, b.secret, nil, info, KeySize)
}

// Seal encrypts plaintext and binds it to additional, which Open must be given again.
func (b *Box) Seal(plaintext, additional []byte) ([]byte, error) {
	out := make([]byte, 1, 1+len(plaintext)+b.aead.Overhead())
	out[0] = version1
	return b.aead.Seal(out, nil, plaintext, additional), nil
}

// Open authenticates and decrypts a value made by Seal with the same additional data.
func (b *Box) Open(ciphertext, additional []byte) ([]byte, error) {
	if len(ciphertext) < 1+b.aead.Overhead() || ciphertext[0] != version1 {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, nil, ciphertext[1:], additional)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// LoadKey returns a Box for the configured key.
//
// If b64 (the value of MOOR_SECRET_KEY) is not empty it must be 32 bytes in standard
// base64, padded or not. Otherwise the key is read from keyFile, which holds it in
// the same encoding; a missing keyFile is created with a fresh random key, mode 0600,
// in a directory created with mode 0700 if needed. A key file that group or others
// may access is refused. logger (nil: slog.Default()) hears about a created key file.
func LoadKey(b64 string, keyFile string, logger *slog.Logger) (*Box, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if s := strings.TrimSpace(b64); s != "" {
		key, err := decodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("MOOR_SECRET_KEY: %w", err)
		}
		return New(key)
	}
	if keyFile == "" {
		return nil, errors.New("secretbox: neither MOOR_SECRET_KEY nor a key file is configured")
	}
	encoded, created, err := SecretFile(keyFile, GenerateKey)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	key, err := decodeKey(encoded)
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", keyFile, err)
	}
	if created {
		logger.Warn("created a new secret key file; back it up: stored credentials cannot be decrypted without it",
			"path", keyFile)
	}
	return New(key)
}

// GenerateKey returns a new random key in the encoding LoadKey accepts.
func GenerateKey() string {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // never fails: crypto/rand crashes the program instead
	return base64.StdEncoding.EncodeToString(key)
}

func decodeKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, errors.New("not valid base64; it must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("decodes to %d bytes; it must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)", len(key))
	}
	return key, nil
}

// SecretFile returns the content of the secret file at path, without
// surrounding space. A missing file is created holding generate()'s value,
// mode 0600, in a directory created with mode 0700 if needed; it is never seen
// partly written, and when another process creates it meanwhile, that one
// wins. created says this call made it. A file that group or others may
// access is refused; the caller checks the content.
func SecretFile(path string, generate func() string) (value string, created bool, err error) {
	value, err = readSecretFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createSecretFile(path, generate())
	}
	return value, false, err
}

func readSecretFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o: it must not be accessible by group or others (chmod 600 %s)", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func createSecretFile(path, value string) (string, bool, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, err
	}
	tmp, err := os.CreateTemp(dir, ".moor-secret-*")
	if err != nil {
		return "", false, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(value + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, err
	}
	// A hard link fails if path exists, where a rename would replace it.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			value, err := readSecretFile(path)
			return value, false, err
		}
		return "", false, err
	}
	return value, true, nil
}
