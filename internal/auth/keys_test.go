package auth

import (
	"bytes"
	"testing"
)

func TestNewKey(t *testing.T) {
	k1, h1, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, h2, _ := NewKey()
	if k1 == k2 || bytes.Equal(h1, h2) {
		t.Fatal("two keys are equal")
	}
	if !WellFormed(k1) {
		t.Fatalf("fresh key %q is not well formed", k1)
	}
	if !bytes.Equal(HashKey(k1), h1) {
		t.Fatal("hash does not match")
	}
	for _, bad := range []string{"", "moor_", "moor_short", "Bearer " + k1, k1 + "x", "xxxx_" + k1[5:]} {
		if WellFormed(bad) {
			t.Errorf("WellFormed(%q) = true", bad)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, ok := range []string{"admin", "operator", "viewer"} {
		if _, err := ParseRole(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "root", "Admin", "viewer "} {
		if _, err := ParseRole(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
