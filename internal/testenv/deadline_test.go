package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDeadline: a stuck test ends its test binary soon after its deadline,
// naming itself, with the stuck goroutine's stack, after the exit hooks.
func TestDeadline(t *testing.T) {
	if os.Getenv("TESTENV_STUCK") == "1" {
		AtExit(func() { os.Stderr.WriteString("exit hook ran\n") })
		Deadline(t)
		stuckForever()
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeadline$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "TESTENV_STUCK=1", EnvTestDeadline+"=300ms")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err == nil {
		t.Fatalf("a stuck test passed:\n%s", out.String())
	}
	for _, want := range []string{"--- FAIL: TestDeadline (stuck", "testenv.stuckForever", "exit hook ran", "TestDeadline is stuck; ending the test binary"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if took > 30*time.Second {
		t.Errorf("took %v to end a test with a deadline of 300ms", took)
	}
}

func stuckForever() { select {} }
