package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestConfirm: on a terminal "y" or "yes" confirms and anything else does
// not; without a terminal nothing is read and the way out is --yes.
func TestConfirm(t *testing.T) {
	for _, c := range []struct {
		tty   bool
		input string
		ok    bool
		want  string // in the error
	}{
		{true, "y\n", true, ""},
		{true, " YES \n", true, ""},
		{true, "n\n", false, "nothing was removed"},
		{true, "", false, "nothing was removed"},
		{false, "y\n", false, "--yes"},
	} {
		var stderr bytes.Buffer
		err := confirm(uninstallIO{stdin: strings.NewReader(c.input), tty: c.tty, stdout: &bytes.Buffer{}, stderr: &stderr})
		if (err == nil) != c.ok || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("tty %v, %q: %v", c.tty, c.input, err)
		}
		if c.tty && !strings.Contains(stderr.String(), "Type y to confirm") {
			t.Errorf("tty %v: prompt %q", c.tty, stderr.String())
		}
	}
}
