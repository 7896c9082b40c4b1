//go:build race

package testenv

// Race is true when the tests are built with -race; binaries they build
// for tests (moor itself) are then built with it too.
const Race = true
