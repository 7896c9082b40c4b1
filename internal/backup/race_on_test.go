//go:build race

package backup

const raceEnabled = true
