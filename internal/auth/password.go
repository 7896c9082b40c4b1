package auth

import (
	"crypto/rand"
	"encoding/base64"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/moorhq/moor/internal/domain"
)

const bcryptCost = 12

// ValidatePassword checks a new password's length (bcrypt reads 72 bytes).
func ValidatePassword(pw string) error {
	if len(pw) < 12 || len(pw) > 72 {
		return domain.Invalid("password", "must be 12 to 72 characters")
	}
	return nil
}

// HashPassword returns the bcrypt hash to store.
func HashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	return string(h), err
}

var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no user has this password"), bcryptCost)
	return h
})

// CheckPassword reports whether pw matches hash. With no hash (no such
// user) it spends the same time on a dummy, so timing does not tell which
// user names exist.
func CheckPassword(hash, pw string) bool {
	if hash == "" {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// NewSessionToken returns a session token for the cookie and the hash to
// store.
func NewSessionToken() (token string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashKey(token), nil
}

// WellFormedSession reports whether token could be a session token.
func WellFormedSession(token string) bool {
	if len(token) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}
