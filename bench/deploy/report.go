//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	host "github.com/moorhq/moor/bench/internal/machine"
	"github.com/moorhq/moor/internal/domain"
)

type machine struct {
	cpus                      int
	cpuModel, kernel          string
	dockerVersion, dockerAPI  string
	storageDriver, cgroup     string
	postgres, goVersion, moor string
}

func describeMachine(ctx context.Context, o options) machine {
	m := machine{cpus: runtime.NumCPU(), goVersion: runtime.Version()}
	m.cpuModel = host.CPUModel()
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.kernel = strings.TrimSpace(string(out))
	}
	if out, err := docker(ctx, "version", "--format", "{{.Server.Version}}|{{.Server.APIVersion}}"); err == nil {
		m.dockerVersion, m.dockerAPI, _ = strings.Cut(out, "|")
	}
	if out, err := docker(ctx, "info", "--format", "{{.Driver}}|{{.CgroupDriver}} v{{.CgroupVersion}}"); err == nil {
		m.storageDriver, m.cgroup, _ = strings.Cut(out, "|")
	}
	if out, err := exec.Command(o.moorBin, "version").Output(); err == nil {
		m.moor = strings.TrimSpace(string(out))
	}
	return m
}

type results struct {
	started, finished time.Time
	machine           machine
	warmup            []sample
	samples           map[string][]sample
	idle0             *idleStats
	conc              *concResult
	profile           *profileResult
	profileErr        string
	failures          []string
	dev               *dockerEvents // engine event times, for the profile's timeline
}

type stats struct {
	n                        int
	min, med, p90, max, mean time.Duration
}

func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	// p90: nearest rank.
	k := (9*len(s) + 9) / 10
	return stats{n: len(s), min: s[0], med: median(s), p90: s[k-1], max: s[len(s)-1], mean: sum / time.Duration(len(s))}
}

// median of sorted ds.
func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

func medianOf(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return median(s)
}

func totals(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.total()
	}
	return out
}

func (r *results) side(name string) stats { return summarize(totals(r.samples[name])) }

// ratio of medians moor / docker run (0 when either is missing).
func (r *results) ratio() float64 {
	m, d := r.side(sideMoor), r.side(sideDocker)
	if m.n == 0 || d.n == 0 {
		return 0
	}
	return float64(m.med) / float64(d.med)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// phases: for each pair of consecutive marks, the median of the step over
// the samples where both are known.
func phases(ss []sample) [][2]string {
	if len(ss) == 0 {
		return nil
	}
	var out [][2]string
	for i := 1; i < len(ss[0].marks); i++ {
		var ds []time.Duration
		for _, s := range ss {
			a, b := s.marks[i-1].at, s.marks[i].at
			if a.IsZero() || b.IsZero() {
				continue
			}
			ds = append(ds, b.Sub(a))
		}
		label := ss[0].marks[i-1].label + " → " + ss[0].marks[i].label
		if len(ds) == 0 {
			out = append(out, [2]string{label, "n/a"})
			continue
		}
		out = append(out, [2]string{label, ms(medianOf(ds))})
	}
	return out
}

const (
	sectionBegin = "<!-- BEGIN bench/deploy: written by bench/run.sh, replaced on each run -->"
	sectionEnd   = "<!-- END bench/deploy -->"
)

// writeSection replaces this benchmark's section of path, keeping the rest.
func writeSection(path, body string) error {
	section := sectionBegin + "\n" + body + "\n" + sectionEnd + "\n"
	old, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return os.WriteFile(path, []byte("# moor benchmarks\n\n"+section), 0o644)
	}
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, sectionBegin), strings.Index(s, sectionEnd)
	if i >= 0 && j > i {
		rest := strings.TrimPrefix(s[j+len(sectionEnd):], "\n")
		s = s[:i] + section + rest
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func (r *results) markdown(o options) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	m := r.machine
	p("## Deploy-to-running latency: moor vs `docker run`\n\n")
	p("Run %s (%s), with `%s` (`make bench` runs `bash bench/run.sh`; the flags of the Go program: `go run ./bench/deploy -h`).\n\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), r.finished.Sub(r.started).Round(time.Second), o.command)
	p("Machine: %d CPUs (%s), Linux %s; Docker Engine %s (API %s, %s, cgroup %s); PostgreSQL %s (throwaway cluster, fsync off); %s; moor %s.\n\n",
		m.cpus, m.cpuModel, m.kernel, m.dockerVersion, m.dockerAPI, m.storageDriver, m.cgroup, m.postgres, m.goVersion, m.moor)
	p("Image `%s` (the `testapp` type), %d deploys per side, interleaved (the order of the sides rotates each round), each container removed between deploys outside the timed window, then a %s pause. One untimed warm-up deploy per side first.\n\n", o.image, o.rounds, o.settle)
	p("- **moor**: from just before `POST /api/v1/containers {\"name\":…,\"type\":\"testapp\"}` to the arrival of the `container.running` event on `LISTEN moor_events` (what the dashboard sees).\n")
	p("- **docker run**: `docker run -d --name … --network <moor's network> %s` exec'd as a user would, until it returns (the engine has started the container).\n", o.image)
	p("- **docker run + moor's options**: the same with what moor asks of the engine for this type: a named volume, 64 MB memory limit, restart unless-stopped, 2 network aliases, hostname, env, exposed port, and the type's health check (an exec-form HEALTHCHECK on a copy of the image tagged for the run: `docker run --health-cmd` can only give a shell form, and the image has no shell).\n\n")

	p("| | n | min | median | p90 | max | mean |\n|---|---|---|---|---|---|---|\n")
	for _, side := range sides {
		s := r.side(side)
		p("| %s | %d | %s | **%s** | %s | %s | %s |\n", side, s.n, ms(s.min), ms(s.med), ms(s.p90), ms(s.max), ms(s.mean))
	}
	ratio := r.ratio()
	verdict := "PASS"
	if ratio > o.target || ratio == 0 {
		verdict = "FAIL"
	}
	p("\n**Ratio of medians moor / docker run: %.2fx** (target ≤ %.2fx): **%s**.", ratio, o.target, verdict)
	if d := r.side(sideDockerOpts); d.n > 0 && r.side(sideMoor).n > 0 {
		p(" Against `docker run` with moor's options: %.2fx.", float64(r.side(sideMoor).med)/float64(d.med))
	}
	p("\n\n")
	if len(r.warmup) > 0 {
		p("Warm-up (untimed, first deploy of each side; moor's also creates the network):")
		for _, s := range r.warmup {
			p(" %s %s;", s.side, ms(s.total()))
		}
		p("\n\n")
	}

	p("### Where the time goes\n\n")
	p("Medians of each step over the rounds, from the engine's own event timestamps (`docker events`: volume create, container create, container start); the medians of the steps need not add up to the median of the totals.\n\n")
	for _, side := range sides {
		ss := r.samples[side]
		if len(ss) == 0 {
			continue
		}
		p("| %s | median |\n|---|---|\n", side)
		for _, ph := range phases(ss) {
			p("| %s | %s |\n", ph[0], ph[1])
		}
		p("\n")
	}

	if c := r.conc; c != nil {
		p("### %d concurrent deploys\n\n", c.n)
		ok := c.running == c.n && c.failed == 0 && c.lost == 0 && len(c.postErrs) == 0 &&
			c.dockerContainers == c.n && c.dockerRunning == c.n && c.rows == int64(c.n) && c.rowsRunning == int64(c.n) &&
			c.rowsFailed == 0 && c.failedEvents == 0
		verdict := "PASS: all succeeded, none lost"
		if !ok {
			verdict = "FAIL"
		}
		p("%d `POST /api/v1/containers` fired at once (one goroutine each), then waited for each `container.running` event (timeout %s). **%s.**\n\n", c.n, o.concTimeout, verdict)
		p("| | |\n|---|---|\n")
		p("| accepted (202) | %d/%d, the last after %s |\n", c.posted, c.n, ms(c.allPosted))
		p("| running events | %d (failed %d, lost %d) |\n", c.running, c.failed, c.lost)
		p("| first / median / **last running** after the first POST | %s / %s / **%s** |\n", ms(c.firstRunning), ms(c.medianRunning), ms(c.lastRunning))
		p("| Docker containers with the installation's owner label | %d (%d running) |\n", c.dockerContainers, c.dockerRunning)
		p("| rows in `containers` | %d (%d running, %d failed); `container.failed` events in the whole run: %d |\n", c.rows, c.rowsRunning, c.rowsFailed, c.failedEvents)
		p("| removal of all through the API (DELETE each, wait for `container.removed`) | %d removed in %s |\n", c.removed, ms(c.removeWall))
		p("| left after removal | %d containers, %d volumes, %d rows |\n", c.leftContainers, c.leftVolumes, c.leftRows)
		p("| total wall time (first POST → all removed, including the two %s load samples below) | %s |\n\n", c.idle.window, c.total.Round(time.Millisecond))
		if d := c.docker; d != nil {
			p("For reference, %d `docker run -d` **with moor's options** (volume, memory limit, aliases, the type's 1 s health check…) started at once, as `for i in …; do docker run -d … & done` would: %d returned OK (%d failed), %d running; first / median / **last returned after %s / %s / %s**; `docker rm -f -v` + `docker volume rm` of all: %s; left: %d containers, %d volumes. (moor's reconciler works on at most `MOOR_RECONCILE_WORKERS` containers at a time.)\n\n",
				c.n, d.ok, d.failed, d.running, ms(d.first), ms(d.median), ms(d.last), ms(d.removeWall), d.leftContainers, d.leftVolumes)
		}
		if len(c.rounds) > 0 {
			p("Side by side, %d waves each, the order alternating (how fast this engine starts %d containers drifts between waves, so one pair alone can favour either side):\n\n", len(c.rounds), c.n)
			p("| round | first | moor: last running | docker run: last returned | moor / docker run |\n|---|---|---|---|---|\n")
			var ml, dl []time.Duration
			for i, rd := range c.rounds {
				first := "docker run"
				if rd.moorFirst {
					first = "moor"
				}
				p("| %d | %s | %s | %s | %.2fx |\n", i+1, first, ms(rd.moorLast), ms(rd.dockerLast), float64(rd.moorLast)/float64(max(rd.dockerLast, 1)))
				ml, dl = append(ml, rd.moorLast), append(dl, rd.dockerLast)
			}
			slices.Sort(ml)
			slices.Sort(dl)
			p("\n**Median of the last running: moor %s, docker run %s: %.2fx.**\n\n", ms(median(ml)), ms(median(dl)), float64(median(ml))/float64(max(median(dl), 1)))
		}
		p("Load with nothing asked of moor (CPU in %% of one core, over %s):\n\n", c.idle.window)
		p("| containers running | moor CPU | dockerd CPU | containerd CPU | DB transactions/s | moor events/s | Docker events/s of moor's containers |\n|---|---|---|---|---|---|---|\n")
		for _, st := range []*idleStats{r.idle0, c.idle, c.idlePaused} {
			if st == nil {
				continue
			}
			what := fmt.Sprint(st.running)
			if st.paused {
				what += ", moor paused (SIGSTOP)"
			}
			p("| %s | %.1f%% | %.1f%% | %.1f%% | %.1f | %.1f | %s |\n", what, st.moorCPU, st.dockerdCPU, st.containerdCPU, st.pgXacts, st.moorEvents, rates(st.dockerEvents))
		}
		p("\nThe paused row is the engine's own cost of running the containers and their health checks (every 1 s for this type); the difference to the row above is what moor adds while nothing is asked of it.\n\n")
	}

	if r.profileErr != "" {
		p("### Profile\n\nThe profile failed: %s\n\n", r.profileErr)
	} else if r.profile != nil && len(r.profile.deploys) > 0 {
		r.profileMarkdown(&w, o)
	}

	if len(r.failures) > 0 {
		p("### Failures\n\n")
		for _, f := range r.failures {
			p("- %s\n", f)
		}
		p("\n")
	}
	return strings.TrimRight(w.String(), "\n")
}

func rates(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func (r *results) profileMarkdown(w *strings.Builder, o options) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	pr := r.profile
	n := len(pr.deploys)
	var tot []time.Duration
	for _, d := range pr.deploys {
		tot = append(tot, d.total())
	}
	p("### Profile of moor's deploy path\n\n")
	p("moor restarted with `MOOR_LOG_LEVEL=debug`, its Docker API traffic through a logging proxy (unix socket → the engine's)")
	if pr.sqlLogged {
		p(", and PostgreSQL logging every statement with its duration (`log_min_duration_statement = 0`)")
	}
	p("; %d deploys, one at a time, POST → running event. The proxy and the statement log add a little to each call: median total here %s. Docker calls are counted from the POST to the running event, including those of reconcile passes woken by Docker's own events meanwhile.\n\n", n, ms(medianOf(tot)))

	// Docker calls per deploy, by endpoint.
	type agg struct {
		n   int
		ds  []time.Duration
		sum time.Duration
	}
	byEP := map[string]*agg{}
	var order []string
	for _, d := range pr.deploys {
		for _, c := range d.calls {
			a := byEP[c.endpoint()]
			if a == nil {
				a = &agg{}
				byEP[c.endpoint()] = a
				order = append(order, c.endpoint())
			}
			a.n++
			a.ds = append(a.ds, c.end.Sub(c.start))
			a.sum += c.end.Sub(c.start)
		}
	}
	var calls, callTime []time.Duration
	for _, d := range pr.deploys {
		var sum time.Duration
		for _, c := range d.calls {
			sum += c.end.Sub(c.start)
		}
		calls = append(calls, time.Duration(len(d.calls)))
		callTime = append(callTime, sum)
	}
	p("**Docker API calls per deploy** (median %d calls, %s summed):\n\n", medianOf(calls), ms(medianOf(callTime)))
	p("| call | per deploy | median each | per deploy, summed |\n|---|---|---|---|\n")
	for _, ep := range order {
		a := byEP[ep]
		p("| `%s` | %.1f | %s | %s |\n", ep, float64(a.n)/float64(n), ms(medianOf(a.ds)), ms(a.sum/time.Duration(n)))
	}
	if len(pr.dockerRuns) > 0 {
		d := pr.dockerRuns[len(pr.dockerRuns)/2]
		var eps []string
		for _, c := range d.calls {
			eps = append(eps, fmt.Sprintf("`%s` %s", c.endpoint(), ms(c.end.Sub(c.start))))
		}
		p("\nFor comparison, `docker run -d` sends %d calls: %s.\n", len(d.calls), strings.Join(eps, ", "))
	}
	p("\n")

	if pr.sqlLogged {
		var stmts, sqlTime []time.Duration
		type sagg struct {
			n   int
			sum time.Duration
		}
		byText := map[string]*sagg{}
		var torder []string
		for _, d := range pr.deploys {
			k := 0
			var sum time.Duration
			for _, e := range d.sql {
				sum += e.dur
				if !e.isStatement() {
					continue
				}
				k++
				t := short(e.text, 90)
				a := byText[t]
				if a == nil {
					a = &sagg{}
					byText[t] = a
					torder = append(torder, t)
				}
				a.n++
				a.sum += e.dur
			}
			stmts = append(stmts, time.Duration(k))
			sqlTime = append(sqlTime, sum)
		}
		p("**SQL statements per deploy** (all of moor's connections; median %d statements, %s of server time for parse+bind+execute):\n\n", medianOf(stmts), ms(medianOf(sqlTime)))
		p("| statement | per deploy | execute time per deploy |\n|---|---|---|\n")
		for _, t := range torder {
			a := byText[t]
			p("| `%s` | %.1f | %s |\n", strings.ReplaceAll(t, "|", `\|`), float64(a.n)/float64(n), ms(a.sum/time.Duration(n)))
		}
		p("\n")
	}

	// Timeline of the median deploy.
	d := pr.medianDeploy()
	type ev struct {
		at   time.Time
		dur  time.Duration
		what string
	}
	evs := []ev{{d.t0, 0, "POST /api/v1/containers sent"}, {d.tAPI, 0, "202 received"}, {d.t1, 0, "container.running event received (LISTEN)"}}
	for _, c := range d.calls {
		evs = append(evs, ev{c.start, c.end.Sub(c.start), fmt.Sprintf("docker %s → %d", c.endpoint(), c.status)})
	}
	// SQL at its completion, as logged: the log's order is kept for equal
	// milliseconds.
	for _, e := range d.sql {
		if e.isStatement() {
			evs = append(evs, ev{e.end, e.dur, fmt.Sprintf("sql [%d] %s", e.pid, short(e.text, 100))})
		}
	}
	dn := domain.DockerName(domain.DefaultProject, d.name, 0)
	for _, x := range []struct{ obj, action, label string }{
		{domain.VolumeName(domain.DefaultProject, d.name, "data", 0), "create", "engine event: volume create"},
		{dn, "create", "engine event: container create"},
		{dn, "start", "engine event: container start"},
	} {
		if at := r.devAt(x.obj, x.action); !at.IsZero() {
			evs = append(evs, ev{at, 0, x.label})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	p("**Timeline of the median profiled deploy** (%s; ms from the POST; [duration in ms]; Docker calls at their start, SQL statements at their completion with the log's millisecond resolution; `[pid]` is the server process, i.e. the connection):\n\n```\n", ms(d.total()))
	for _, e := range evs {
		dur := ""
		if e.dur > 0 {
			dur = fmt.Sprintf("[%6.2f]", float64(e.dur)/float64(time.Millisecond))
		}
		p("%8.1f %8s  %s\n", float64(e.at.Sub(d.t0))/float64(time.Millisecond), dur, e.what)
	}
	p("```\n\n")

	p("**With one container running and nothing asked**, over %s: ", pr.idleWindow)
	var parts []string
	total := 0
	keys := make([]string, 0, len(pr.idleCalls))
	for k := range pr.idleCalls {
		keys = append(keys, k)
		total += pr.idleCalls[k]
	}
	sort.Slice(keys, func(i, j int) bool { return pr.idleCalls[keys[i]] > pr.idleCalls[keys[j]] })
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("`%s` %.1f/s", k, float64(pr.idleCalls[k])/pr.idleWindow.Seconds()))
	}
	p("moor made %.1f Docker API calls/s (%s)", float64(total)/pr.idleWindow.Seconds(), strings.Join(parts, ", "))
	if pr.sqlLogged {
		p(" and %.1f SQL statements/s", float64(pr.idleSQL)/pr.idleWindow.Seconds())
	}
	var evp []string
	for a, k := range pr.idleEvents {
		evp = append(evp, fmt.Sprintf("%s %.1f/s", a, float64(k)/pr.idleWindow.Seconds()))
	}
	sort.Strings(evp)
	p("; the engine sent these events for the container: %s.\n\n", strings.Join(evp, ", "))
	p("moor's debug log of the profile run: `%s` (removed with the scratch directory).\n\n", pr.moorLog)
}

func (r *results) devAt(name, action string) time.Time {
	if r.dev == nil {
		return time.Time{}
	}
	return r.dev.at(name, action)
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
