//go:build !linux

package testenv

import "testing"

// OutsideListener needs Linux network namespaces.
func OutsideListener(t testing.TB) string {
	t.Fatal("OutsideListener needs Linux network namespaces")
	return ""
}
