//go:build linux

package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// concResult is what the concurrent deploys gave.
type concResult struct {
	n                 int
	posted, running   int
	failed, lost      int
	postErrs          []string
	allPosted         time.Duration // start -> last 202
	firstRunning      time.Duration
	medianRunning     time.Duration
	lastRunning       time.Duration // start -> last running event
	docker            *concDocker   // the same number of `docker run -d` at once
	rounds            []concRound   // the first pair of waves and those after it
	dockerContainers  int           // with the owner label, after all ran
	dockerRunning     int
	rows, rowsRunning int64
	rowsFailed        int64
	failedEvents      int64
	idle              *idleStats // load while all of them run
	idlePaused        *idleStats // the same with moor stopped (SIGSTOP)
	removeWall        time.Duration
	removed           int
	leftContainers    int
	leftVolumes       int
	leftRows          int64
	total             time.Duration // start of the POSTs -> everything removed
}

// concurrency fires n POSTs at once, checks every deploy arrived, then
// removes them all.
func (b *bench) concurrency(ctx context.Context) error {
	n := b.o.concurrent
	r := &concResult{n: n}
	b.res.conc = r
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c-%s-%d", b.o.runID, i)
	}
	log.Printf("concurrent: %d POSTs at once", n)
	res, t0 := b.moorWave(ctx, names)
	if err := ctx.Err(); err != nil {
		return err
	}
	var times []time.Duration
	for i, x := range res {
		switch {
		case x.postErr != nil:
			r.postErrs = append(r.postErrs, x.postErr.Error())
			b.fail.add("concurrent deploy %s: %v", names[i], x.postErr)
			continue
		case x.err != nil:
			r.lost++
			c, code, _ := b.api.get(ctx, names[i])
			b.fail.add("concurrent deploy %s lost: %v (GET: %d, status %q %s)", names[i], x.err, code, c.Status, c.StatusReason)
		case x.kind == "container.failed":
			r.failed++
			c, _, _ := b.api.get(ctx, names[i])
			b.fail.add("concurrent deploy %s failed: %s", names[i], c.StatusReason)
		default:
			r.running++
			times = append(times, x.at)
		}
		r.posted++
		r.allPosted = max(r.allPosted, x.posted)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	if len(times) > 0 {
		r.firstRunning, r.medianRunning, r.lastRunning = times[0], median(times), times[len(times)-1]
	}
	log.Printf("concurrent: %d/%d running, %d failed, %d lost; last running after %s", r.running, n, r.failed, r.lost, ms(r.lastRunning))

	// Cross-check Docker and the database.
	owner := "label=moor.owner=" + b.installation
	ids, err := dockerLines(ctx, "ps", "-aq", "--filter", owner)
	if err != nil {
		return err
	}
	r.dockerContainers = len(ids)
	ids, err = dockerLines(ctx, "ps", "-q", "--filter", owner, "--filter", "status=running")
	if err != nil {
		return err
	}
	r.dockerRunning = len(ids)
	labels, err := dockerLines(ctx, "ps", "-a", "--filter", owner, "--format", `{{.Label "moor.name"}}`)
	if err != nil {
		return err
	}
	have := map[string]int{}
	for _, l := range labels {
		have[l]++
	}
	for _, nm := range names {
		if have[nm] != 1 {
			b.fail.add("concurrent deploy %s: %d Docker container(s), want 1", nm, have[nm])
		}
	}
	if r.dockerContainers != n || r.dockerRunning != n {
		b.fail.add("concurrent: %d Docker containers with the owner label (%d running), want %d", r.dockerContainers, r.dockerRunning, n)
	}
	db := b.o.dbURL
	if r.rows, err = queryInt(ctx, db, `SELECT count(*) FROM containers WHERE name LIKE $1`, "c-"+b.o.runID+"-%"); err != nil {
		return err
	}
	if r.rowsRunning, err = queryInt(ctx, db, `SELECT count(*) FROM containers WHERE name LIKE $1 AND status = 'running'`, "c-"+b.o.runID+"-%"); err != nil {
		return err
	}
	if r.rowsFailed, err = queryInt(ctx, db, `SELECT count(*) FROM containers WHERE status = 'failed'`); err != nil {
		return err
	}
	if r.failedEvents, err = queryInt(ctx, db, `SELECT count(*) FROM events WHERE kind = 'container.failed'`); err != nil {
		return err
	}
	if r.rows != int64(n) || r.rowsRunning != int64(n) || r.rowsFailed != 0 {
		b.fail.add("concurrent: %d rows in containers (%d running, %d failed), want %d running", r.rows, r.rowsRunning, r.rowsFailed, n)
	}
	if r.failedEvents != 0 {
		b.fail.add("concurrent: %d container.failed events in the run", r.failedEvents)
	}

	// The steady load of n running containers.
	time.Sleep(3 * time.Second)
	if r.idle, err = measureIdle(ctx, b, n, "moor-c-"+b.o.runID+"-", 10*time.Second); err != nil {
		return err
	}
	// The same with moor stopped in its tracks: the engine's own load.
	b.moor.cmd.Process.Signal(syscall.SIGSTOP)
	r.idlePaused, err = measureIdle(ctx, b, n, "moor-c-"+b.o.runID+"-", 10*time.Second)
	b.moor.cmd.Process.Signal(syscall.SIGCONT)
	if err != nil {
		return err
	}
	r.idlePaused.paused = true
	time.Sleep(2 * time.Second)

	log.Printf("concurrent: removing all %d through the API", n)
	tr := time.Now()
	r.removed = b.removeAll(ctx, names)
	r.removeWall = time.Since(tr)
	r.total = time.Since(t0)
	if ids, err = dockerLines(ctx, "ps", "-aq", "--filter", owner); err != nil {
		return err
	}
	r.leftContainers = len(ids)
	vols, err := dockerLines(ctx, "volume", "ls", "-q", "--filter", owner)
	if err != nil {
		return err
	}
	r.leftVolumes = len(vols)
	if r.leftRows, err = queryInt(ctx, db, `SELECT count(*) FROM containers`); err != nil {
		return err
	}
	if r.leftContainers != 0 || r.leftVolumes != 0 || r.leftRows != 0 {
		b.fail.add("concurrent: after removal %d containers, %d volumes, %d rows left", r.leftContainers, r.leftVolumes, r.leftRows)
	}
	log.Printf("concurrent: removed %d in %s; left: %d containers, %d volumes, %d rows", r.removed, ms(r.removeWall), r.leftContainers, r.leftVolumes, r.leftRows)
	time.Sleep(2 * time.Second)
	r.docker = b.concurrentDocker(ctx)
	r.rounds = append(r.rounds, concRound{moorFirst: true, moorLast: r.lastRunning, dockerLast: r.docker.last})
	// More rounds, the order alternating: how fast the engine starts 50
	// containers drifts from one minute to the next, so one pair of waves
	// alone can favour either side.
	for k := 2; k <= b.o.concRounds && ctx.Err() == nil; k++ {
		round := concRound{moorFirst: k%2 == 1}
		var d *concDocker
		if !round.moorFirst {
			d = b.concurrentDocker(ctx)
			time.Sleep(2 * time.Second)
		}
		// Names of its own: the event hub remembers the last wave's.
		wave := make([]string, n)
		for i := range wave {
			wave[i] = fmt.Sprintf("c-%s-r%d-%d", b.o.runID, k, i)
		}
		last, err := b.moorRound(ctx, wave)
		if err != nil {
			return err
		}
		if round.moorFirst {
			time.Sleep(2 * time.Second)
			d = b.concurrentDocker(ctx)
		}
		round.moorLast, round.dockerLast = last, d.last
		r.rounds = append(r.rounds, round)
		log.Printf("concurrent round %d: moor last running %s, docker run last returned %s", k, ms(last), ms(d.last))
		time.Sleep(2 * time.Second)
	}
	return ctx.Err()
}

// concRound is one pair of waves of n deploys: through moor and through
// `docker run` with moor's options.
type concRound struct {
	moorFirst            bool
	moorLast, dockerLast time.Duration
}

// waveResult is one deploy of a wave, timed from the first POST.
type waveResult struct {
	postErr error
	posted  time.Duration
	kind    string
	at      time.Duration
	err     error
}

// moorWave fires a POST for each name at once and waits for each to run
// (or fail); it returns each deploy's outcome and when the POSTs went out.
func (b *bench) moorWave(ctx context.Context, names []string) ([]waveResult, time.Time) {
	res := make([]waveResult, len(names))
	start := make(chan struct{})
	var wg sync.WaitGroup
	var t0 time.Time
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res[i].postErr = b.api.create(ctx, names[i])
			res[i].posted = time.Since(t0)
		}()
	}
	time.Sleep(100 * time.Millisecond) // every goroutine parked on start
	t0 = time.Now()
	close(start)
	wg.Wait()
	wctx, cancel := context.WithDeadline(ctx, t0.Add(b.o.concTimeout))
	defer cancel()
	for i := range names {
		if res[i].postErr != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind, at, err := b.hub.wait(wctx, names[i], "container.running", "container.failed")
			res[i].kind, res[i].at, res[i].err = kind, at.Sub(t0), err
		}()
	}
	wg.Wait()
	return res, t0
}

// moorRound is a further wave: every deploy must run; then all are removed
// through the API. It returns when the last one ran.
func (b *bench) moorRound(ctx context.Context, names []string) (time.Duration, error) {
	res, _ := b.moorWave(ctx, names)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var last time.Duration
	for i, x := range res {
		switch {
		case x.postErr != nil:
			b.fail.add("concurrent deploy %s: %v", names[i], x.postErr)
		case x.err != nil:
			b.fail.add("concurrent deploy %s lost: %v", names[i], x.err)
		case x.kind == "container.failed":
			b.fail.add("concurrent deploy %s failed", names[i])
		default:
			last = max(last, x.at)
		}
	}
	b.removeAll(ctx, names)
	return last, ctx.Err()
}

// removeAll removes the named containers through the API, all at once,
// and returns how many went.
func (b *bench) removeAll(ctx context.Context, names []string) int {
	ctx, cancel := context.WithTimeout(ctx, b.o.concTimeout)
	defer cancel()
	var removed atomic.Int64
	var wg sync.WaitGroup
	for _, nm := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.removeMoor(ctx, nm); err != nil {
				b.fail.add("concurrent remove %s: %v", nm, err)
				return
			}
			removed.Add(1)
		}()
	}
	wg.Wait()
	return int(removed.Load())
}

// idleStats is the load on the machine while nothing is asked of moor.
type idleStats struct {
	running       int
	paused        bool
	window        time.Duration
	moorCPU       float64 // percent of one core
	dockerdCPU    float64
	containerdCPU float64
	pgXacts       float64 // transactions per second in moor's database
	moorEvents    float64 // moor events per second
	dockerEvents  map[string]float64
}

// measureIdle samples CPU time of moor, dockerd and containerd, transactions
// in the database and the container events of moor's containers over window.
func measureIdle(ctx context.Context, b *bench, running int, prefix string, window time.Duration) (*idleStats, error) {
	st := &idleStats{running: running, window: window}
	dockerd, containerd := pidOf("dockerd"), pidOf("containerd")
	xacts := func() (int64, error) {
		return queryInt(ctx, b.o.dbURL, `SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()`)
	}
	x0, err := xacts()
	if err != nil {
		return nil, err
	}
	ev0 := b.hub.total()
	m0, d0, c0 := cpuTicks(b.moor.pid()), cpuTicks(dockerd), cpuTicks(containerd)
	t0 := time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	m1, d1, c1 := cpuTicks(b.moor.pid()), cpuTicks(dockerd), cpuTicks(containerd)
	t1 := time.Now()
	ev1 := b.hub.total()
	x1, err := xacts()
	if err != nil {
		return nil, err
	}
	secs := t1.Sub(t0).Seconds()
	pct := func(a, b int64) float64 { return float64(b-a) / 100 / secs * 100 } // USER_HZ is 100 on Linux
	st.moorCPU, st.dockerdCPU, st.containerdCPU = pct(m0, m1), pct(d0, d1), pct(c0, c1)
	st.pgXacts = float64(x1-x0-2) / secs // less the two reads of the counter
	st.moorEvents = float64(ev1-ev0) / secs
	st.dockerEvents = map[string]float64{}
	for a, k := range b.dev.actions(prefix, t0, t1) {
		st.dockerEvents[a] = float64(k) / secs
	}
	log.Printf("idle with %d running: moor %.1f%% CPU, dockerd %.1f%%, containerd %.1f%%, %.1f db xacts/s, docker events/s %v",
		running, st.moorCPU, st.dockerdCPU, st.containerdCPU, st.pgXacts, st.dockerEvents)
	return st, nil
}

func pidOf(name string) int {
	out, err := exec.Command("pidof", "-s", name).Output()
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return pid
}

// cpuTicks is utime+stime of pid in clock ticks (0 if unknown).
func cpuTicks(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// concDocker is the reference for the concurrent deploys: as many
// `docker run -d` (with moor's options) started at once.
type concDocker struct {
	ok, failed                  int
	first, median, last         time.Duration
	running                     int
	removeWall                  time.Duration
	leftContainers, leftVolumes int
}

func (b *bench) concurrentDocker(ctx context.Context) *concDocker {
	n := b.o.concurrent
	r := &concDocker{}
	log.Printf("concurrent: %d `docker run -d` (with moor's options) at once, for reference", n)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-cdr-%s-%d", b.o.runID, i)
	}
	done := make([]time.Duration, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var t0 time.Time
	wctx, cancel := context.WithTimeout(ctx, b.o.concTimeout)
	defer cancel()
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = docker(wctx, b.dockerArgs(names[i], true)...)
			done[i] = time.Since(t0)
		}()
	}
	time.Sleep(100 * time.Millisecond)
	t0 = time.Now()
	close(start)
	wg.Wait()
	var times []time.Duration
	for i := range names {
		if errs[i] != nil {
			r.failed++
			log.Printf("concurrent docker run %s: %v", names[i], errs[i])
			continue
		}
		r.ok++
		times = append(times, done[i])
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	if len(times) > 0 {
		r.first, r.median, r.last = times[0], median(times), times[len(times)-1]
	}
	run := "label=moor.bench.run=" + b.o.runID
	if ids, err := dockerLines(ctx, "ps", "-q", "--filter", run, "--filter", "status=running"); err == nil {
		r.running = len(ids)
	}
	log.Printf("concurrent docker run: %d ok, %d failed, last returned after %s", r.ok, r.failed, ms(r.last))
	tr := time.Now()
	if ids, _ := dockerLines(ctx, "ps", "-aq", "--filter", run); len(ids) > 0 {
		docker(ctx, append([]string{"rm", "-f", "-v"}, ids...)...)
	}
	if vols, _ := dockerLines(ctx, "volume", "ls", "-q", "--filter", run); len(vols) > 0 {
		docker(ctx, append([]string{"volume", "rm", "-f"}, vols...)...)
	}
	r.removeWall = time.Since(tr)
	ids, _ := dockerLines(ctx, "ps", "-aq", "--filter", run)
	vols, _ := dockerLines(ctx, "volume", "ls", "-q", "--filter", run)
	r.leftContainers, r.leftVolumes = len(ids), len(vols)
	return r
}
