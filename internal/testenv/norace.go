//go:build !race

package testenv

// Race is true when the tests are built with -race.
const Race = false
