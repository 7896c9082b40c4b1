// Package auth makes and checks API keys and passwords.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/moorhq/moor/internal/domain"
)

// KeyPrefix marks moor API keys, so secret scanners and people recognise them.
const KeyPrefix = "moor_"

// NewKey returns a fresh API key and the hash to store. The key itself is
// shown once and never stored.
func NewKey() (key string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, HashKey(key), nil
}

// HashKey is how a key is looked up. Keys carry 256 random bits, so a fast
// hash is enough: there is nothing to guess.
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// WellFormed reports whether key could be a moor key, so garbage never
// reaches the database.
func WellFormed(key string) bool {
	rest, ok := strings.CutPrefix(key, KeyPrefix)
	if !ok || len(rest) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

// ValidateKeyName checks an API key's name.
func ValidateKeyName(name string) error {
	if !domain.IsLabel(name) {
		return domain.Invalid("name", "must be a DNS label: lower-case letters, digits and '-', at most 63 characters")
	}
	return nil
}

// ParseRole checks a role name.
func ParseRole(s string) (domain.Role, error) {
	r := domain.Role(s)
	if !r.Valid() {
		return "", domain.Invalid("role", "must be one of admin, operator, viewer (got %q)", s)
	}
	return r, nil
}
