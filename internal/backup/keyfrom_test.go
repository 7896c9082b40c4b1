package backup

import (
	"bytes"
	"testing"

	"github.com/moorhq/moor/internal/secretbox"
)

// TestKeyFrom: the key a secretbox derives is DeriveKey's for its secret.
func TestKeyFrom(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	box, err := secretbox.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := KeyFrom(box)
	if err != nil {
		t.Fatal(err)
	}
	want, err := DeriveKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("KeyFrom(box) differs from DeriveKey(secret)")
	}
	if other, _ := box.DeriveKey("something else"); bytes.Equal(other, want) {
		t.Fatal("another info gave the same key")
	}
}
