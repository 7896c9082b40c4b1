package testenv

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// EnvTestDeadline names the variable that sets how long one test may run
// (a Go duration; 0 turns the watchdog off, e.g. under a debugger).
const EnvTestDeadline = "MOOR_TEST_DEADLINE"

// DefaultTestDeadline is the deadline without EnvTestDeadline: many times
// the longest test of today (about 20 s on 2 busy cores), doubled under
// -race.
const DefaultTestDeadline = 3 * time.Minute

// Deadline makes t fail fast if it gets stuck. go test's -timeout is per
// test binary: one stuck test holds its whole package until then, and only
// then prints the stacks. Deadline instead ends the test binary once t (its
// subtests and the cleanups registered after this call included) has run
// longer than the deadline, printing t's name and every goroutine's stack,
// after running the AtExit hooks; the other packages of the run go on.
// Cleanups of t cannot run: the goroutine that would run them is the stuck
// one, so Docker objects may stay behind (labelled TestLabel).
//
// Every helper that gives a test a real service calls it (Postgres,
// RequireDocker and so TestImage and StartDockerProxy, StartRegistry,
// FreeTCPPort), so integration tests need not; calling it again for the
// same t does nothing.
func Deadline(t testing.TB) {
	d := testDeadline()
	if _, bench := t.(*testing.B); d <= 0 || bench {
		return // a benchmark runs as long as -benchtime asks
	}
	if _, loaded := watched.LoadOrStore(t, true); loaded {
		return
	}
	start := time.Now()
	timer := time.AfterFunc(d, func() { stuck(t.Name(), time.Since(start), d) })
	t.Cleanup(func() {
		timer.Stop()
		watched.Delete(t)
	})
}

var (
	watched   sync.Map // testing.TB -> true while a deadline runs
	stuckOnce sync.Once
)

var testDeadline = sync.OnceValue(func() time.Duration {
	v := os.Getenv(EnvTestDeadline)
	if v == "" {
		if Race {
			return 2 * DefaultTestDeadline
		}
		return DefaultTestDeadline
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %s=%q is not a duration; using %v\n", EnvTestDeadline, v, DefaultTestDeadline)
		return DefaultTestDeadline
	}
	return d
})

// stuck reports the stuck test with every goroutine's stack and ends the
// test binary.
func stuck(name string, ran, deadline time.Duration) {
	stuckOnce.Do(func() {
		buf := make([]byte, 1<<20)
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				buf = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		fmt.Fprintf(os.Stderr, "\n--- FAIL: %s (stuck: still running after %v, past its deadline of %v; %s sets it)\n\n"+
			"testenv: every goroutine's stack, the test's among them:\n\n%s\n",
			name, ran.Round(time.Millisecond), deadline, EnvTestDeadline, buf)
		// The hooks (the throwaway PostgreSQL's shutdown, say) get a
		// bounded time: one may wait on what the test holds.
		done := make(chan struct{})
		go func() { runExitHooks(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "testenv: exit hooks still running after 30s; exiting without them")
		}
		fmt.Fprintf(os.Stderr, "testenv: %s is stuck; ending the test binary\n", name)
		os.Exit(1)
	})
}
