//go:build linux

// Command deploy benchmarks moor's deploy-to-running latency against a plain
// `docker run` of the same image, and checks 50 concurrent deploys. It is run
// by bench/run.sh (make bench), which builds bin/moor and the test image and
// starts a throwaway PostgreSQL; see bench/README.md.
//
// Latencies:
//   - moor: from just before POST /api/v1/containers to the moment the
//     "container.running" event arrives on LISTEN moor_events (what the
//     dashboard sees), t1 taken when the notification is received;
//   - docker run: from exec of `docker run -d ...` to its return (the engine
//     has started the container by then).
//
// Sides run interleaved, in a rotating order, so drift of the machine hits all
// of them alike. Every container is removed between deploys, outside the
// timed window. Exit status: 0 when every deploy succeeded (the latency target
// is a figure to report, not a test), 1 when a deploy failed or was lost, 2 on
// a setup error.
//
// It runs on Linux only (parent-death signals and SIGSTOP).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	moorBin     string
	dbURL       string
	network     string
	workDir     string
	runID       string
	results     string
	pgLog       string
	image       string
	rounds      int
	concurrent  int
	target      float64
	profile     string
	settle      time.Duration
	concTimeout time.Duration
	concRounds  int
	command     string
}

func main() {
	var o options
	flag.StringVar(&o.moorBin, "moor", "bin/moor", "moor binary")
	flag.StringVar(&o.dbURL, "db", "", "PostgreSQL URL of an empty database (required)")
	flag.StringVar(&o.network, "network", "", "Docker network name for this run (required, unique)")
	flag.StringVar(&o.workDir, "work", "", "scratch directory (required)")
	flag.StringVar(&o.runID, "run-id", "", "run id: label moor.bench.run on the Docker objects made outside moor, and part of every name (required)")
	flag.StringVar(&o.results, "results", "bench/RESULTS.md", "results file (its deploy section is replaced)")
	flag.StringVar(&o.pgLog, "pg-log", "", "the PostgreSQL server log, for the profile's SQL trace (optional)")
	flag.StringVar(&o.image, "image", "moor-testapp:latest", "image of the testapp type")
	flag.IntVar(&o.rounds, "rounds", 20, "deploys per side")
	flag.IntVar(&o.concurrent, "concurrent", 50, "concurrent deploys (0 skips)")
	flag.Float64Var(&o.target, "target", 1.3, "target ratio of medians moor / docker run")
	flag.StringVar(&o.profile, "profile", "auto", "profile moor's deploy path: auto (when the ratio misses the target), always, never")
	flag.DurationVar(&o.settle, "settle", 300*time.Millisecond, "pause after each removal, before the next timed deploy")
	flag.IntVar(&o.concRounds, "concurrent-rounds", 3, "pairs of concurrent waves (moor, docker run), the order alternating")
	flag.DurationVar(&o.concTimeout, "concurrent-timeout", 5*time.Minute, "time allowed for the concurrent deploys to run")
	flag.StringVar(&o.command, "command", "make bench", "the command recorded in the results")
	flag.Parse()
	if o.dbURL == "" || o.network == "" || o.workDir == "" || o.runID == "" {
		fmt.Fprintln(os.Stderr, "deploy: -db, -network, -work and -run-id are required (run it through bench/run.sh)")
		os.Exit(2)
	}
	switch o.profile {
	case "auto", "always", "never":
	default:
		fmt.Fprintln(os.Stderr, "deploy: -profile must be auto, always or never")
		os.Exit(2)
	}
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("bench: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, o))
}

// failure is a deploy that failed or was lost: the run goes on, the exit
// status says so.
type failures struct {
	mu   sync.Mutex
	list []string
}

func (f *failures) add(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	log.Printf("FAILURE: %s", msg)
	f.mu.Lock()
	f.list = append(f.list, msg)
	f.mu.Unlock()
}

func run(ctx context.Context, o options) int {
	b := &bench{o: o}
	defer b.cleanup()
	err := b.main(ctx)
	if err != nil {
		log.Printf("error: %v", err)
		if b.moor != nil {
			log.Printf("moor's log: %s", b.moor.logPath)
			tailFile(b.moor.logPath, 30)
		}
		return 2
	}
	if len(b.fail.list) > 0 {
		log.Printf("%d deploy(s) failed or were lost:\n  %s", len(b.fail.list), strings.Join(b.fail.list, "\n  "))
		return 1
	}
	return 0
}

// bench holds one run's state.
type bench struct {
	o            options
	installation string
	adminKey     string
	moor         *moorProc
	api          *apiClient
	hub          *eventHub
	dev          *dockerEvents
	fail         failures
	res          results
	// healthImage is o.image with the testapp type's health check, for the
	// `docker run` side with moor's options.
	healthImage string
}

func (b *bench) main(ctx context.Context) error {
	o := b.o
	abs, err := filepath.Abs(o.moorBin)
	if err != nil {
		return err
	}
	b.o.moorBin = abs
	b.res.started = time.Now()
	b.res.machine = describeMachine(ctx, o)

	log.Printf("migrating the database")
	if _, err := b.moorCmd(ctx, "migrate"); err != nil {
		return err
	}
	key, err := b.moorCmd(ctx, "apikey", "create", "--name", "bench", "--role", "admin")
	if err != nil {
		return err
	}
	b.adminKey = strings.TrimSpace(key)
	if b.installation, err = queryString(ctx, o.dbURL, `SELECT id::text FROM installation`); err != nil {
		return fmt.Errorf("installation id: %w", err)
	}
	// run.sh removes what carries this owner label if we die.
	if err := os.WriteFile(filepath.Join(o.workDir, "installation"), []byte(b.installation+"\n"), 0o644); err != nil {
		return err
	}
	b.res.machine.postgres, _ = queryString(ctx, o.dbURL, `SHOW server_version`)

	if b.healthImage, err = buildHealthImage(ctx, o.image, o.runID); err != nil {
		return err
	}
	if b.dev, err = watchDockerEvents(ctx, o.runID); err != nil {
		return err
	}
	b.res.dev = b.dev
	b.hub = newEventHub()
	if err := b.hub.listen(ctx, o.dbURL); err != nil {
		return err
	}
	if b.moor, err = startMoor(ctx, b.o, "moor.log", nil); err != nil {
		return err
	}
	b.api = newAPIClient(b.moor.url, b.adminKey)

	// Idle load before anything runs: the baseline for the one with 50
	// containers running.
	if b.res.idle0, err = measureIdle(ctx, b, 0, "moor-b-"+o.runID+"-", 5*time.Second); err != nil {
		return err
	}

	if err := b.latency(ctx); err != nil {
		return err
	}
	if o.concurrent > 0 {
		if err := b.concurrency(ctx); err != nil {
			return err
		}
	}
	ratio := b.res.ratio()
	if o.profile == "always" || (o.profile == "auto" && ratio > o.target) {
		if err := b.profileRun(ctx); err != nil {
			// The figures stand without the profile.
			log.Printf("profile: %v", err)
			b.res.profileErr = err.Error()
		}
	}
	b.res.finished = time.Now()
	b.res.failures = b.fail.list
	text := b.res.markdown(o)
	if err := writeSection(o.results, text); err != nil {
		return err
	}
	fmt.Println()
	fmt.Println(text)
	log.Printf("results written to %s", o.results)
	return nil
}

// moorCmd runs a one-shot moor subcommand and returns its stdout.
func (b *bench) moorCmd(ctx context.Context, args ...string) (string, error) {
	out, err := runCmd(ctx, moorEnv(b.o, nil), b.o.moorBin, args...)
	if err != nil {
		return "", fmt.Errorf("moor %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// cleanup removes every Docker object of this run, whatever happened.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if b.moor != nil {
		b.moor.stop()
	}
	if b.dev != nil {
		b.dev.stop()
	}
	if b.hub != nil {
		b.hub.close()
	}
	removeDockerObjects(ctx, b.installation, b.o.runID, b.o.network)
}

var errTimeout = errors.New("timed out")
