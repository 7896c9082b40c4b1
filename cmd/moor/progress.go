package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/moorhq/moor/internal/client"
	"github.com/moorhq/moor/internal/domain"
)

// waitGoal is what --wait waits for.
type waitGoal struct {
	name   string
	status domain.Status // the status to reach (not with gone)
	gone   bool          // removed: the container answers 404
	// since is the change's time (the container's updated_at in moor's
	// answer): a status recorded before it is the old state, not the
	// answer. Zero for a new container.
	since time.Time
	// replicas, with status running: that many replicas, each running.
	replicas int
	// generation, when set: moor has made that generation real (a rolling
	// replacement keeps the status running throughout).
	generation int64
	// completed, with status running: a container that ran and exited 0,
	// left stopped by its restart policy, is done too (a stack's service
	// others wait for with service_completed_successfully).
	completed bool
	timeout   time.Duration
}

// waiter follows one container after a change: moor's events wake it (and
// carry the image pull's progress), a poll of the container decides, so a
// missed event costs at most a poll interval.
type waiter struct {
	ctx      context.Context
	cl       *client.Client
	events   chan domain.Event
	stop     context.CancelFunc
	progress *progress
}

// change asks for a change with call and, with wait, follows it to the
// goal its answer sets (ok false: nothing to wait for), within timeout.
func (a *app) change(cl *client.Client, wait bool, timeout time.Duration, call func() (domain.Container, error),
	goal func(w *waiter, c domain.Container) (g waitGoal, ok bool)) (domain.Container, error) {
	var c domain.Container
	done, err := a.following(cl, wait, timeout, func() (err error) { c, err = call(); return err },
		func(w *waiter) []waitGoal {
			if g, ok := goal(w, c); ok {
				return []waitGoal{g}
			}
			return nil
		})
	if len(done) > 0 {
		c = done[0]
	}
	return c, err
}

// following asks for a change with call and, with wait, follows every
// container to the goal goals sets once call answered, together, within
// timeout; it returns the containers as they ended. The waiter subscribes
// before the request, so no event of the change can come before the
// stream.
func (a *app) following(cl *client.Client, wait bool, timeout time.Duration, call func() error,
	goals func(w *waiter) []waitGoal) ([]domain.Container, error) {
	ctx, cancel := withTimeout(a.ctx, timeout)
	defer cancel()
	var w *waiter
	if wait {
		w = a.newWaiter(ctx, cl)
		defer w.close()
	}
	if err := call(); err != nil || w == nil {
		return nil, err
	}
	gs := goals(w)
	if len(gs) == 0 {
		return nil, nil
	}
	for i := range gs {
		gs[i].timeout = timeout
	}
	return w.waitAll(gs)
}

// newWaiter subscribes to events before the change is asked for, so none
// of its events can be missed. Without the websocket (a proxy that drops
// upgrades, the caller's websocket quota) it polls only.
func (a *app) newWaiter(ctx context.Context, cl *client.Client) *waiter {
	ctx, cancel := context.WithCancel(ctx)
	w := &waiter{ctx: ctx, cl: cl, stop: cancel, events: make(chan domain.Event, 256),
		progress: newProgress(a.stderr, isTerminal(a.stderr) && a.getenv("TERM") != "dumb")}
	s, err := cl.Watch(ctx, -1)
	if err != nil {
		if ctx.Err() == nil {
			w.progress.stepf("(no event stream: %v; polling)", err)
		}
		close(w.events)
		return w
	}
	go func() {
		defer close(w.events)
		defer s.Close()
		for {
			ev, err := s.Next(ctx)
			if err != nil {
				return
			}
			select {
			case w.events <- ev:
			default: // a poll catches up whatever a full channel drops
			}
		}
	}()
	return w
}

func (w *waiter) close() {
	w.stop()
	w.progress.end()
}

// wait returns the container once it meets goal; an *exitError with
// exitFailed when it failed (or was removed, or stopped, instead) and
// exitTimeout when goal.timeout passed first.
func (w *waiter) wait(goal waitGoal) (domain.Container, error) {
	cs, err := w.waitAll([]waitGoal{goal})
	return cs[0], err
}

// waitAll is wait for several containers at once (a stack's services): it
// returns once each meets its goal, or at the first failure, so a service
// that fails while another waits for it ends the wait at once.
func (w *waiter) waitAll(goals []waitGoal) ([]domain.Container, error) {
	events := w.events
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	out := make([]domain.Container, len(goals))
	done := make([]bool, len(goals))
	var unreachableSince time.Time
	for {
		left, transient := 0, ""
		for i, goal := range goals {
			if done[i] {
				continue
			}
			c, err := w.cl.Container(w.ctx, goal.name)
			if err == nil {
				out[i] = c // kept when a read fails: the last status seen
			}
			ok, werr := w.check(goal, c, err)
			switch {
			case werr != nil && !isTransient(werr):
				return out, werr
			case werr != nil:
				left++
				if transient == "" {
					transient = fmt.Sprintf("%s: %v (retrying)", ref(w.cl, goal.name), werr)
				}
			case ok:
				done[i] = true
			default:
				left++
			}
		}
		if left == 0 {
			return out, nil
		}
		switch {
		case transient != "":
			// moor restarting, or its database away: keep trying until
			// the timeout, quietly for a few seconds.
			if unreachableSince.IsZero() {
				unreachableSince = time.Now()
			} else if time.Since(unreachableSince) > 5*time.Second {
				w.progress.stepf("%s", transient)
				unreachableSince = time.Now()
			}
		default:
			unreachableSince = time.Time{}
		}
		// Sleep until an event of a container waited on or the next poll.
	sleep:
		for {
			select {
			case <-w.ctx.Done():
				return out, w.ended(goals, done, out)
			case <-poll.C:
				break sleep
			case ev, ok := <-events:
				if !ok {
					events = nil // polls only from now on
					poll.Reset(500 * time.Millisecond)
					continue
				}
				i := slices.IndexFunc(goals, func(g waitGoal) bool { return g.name == ev.Container })
				if i < 0 || !sameProject(ev.Project, w.cl.ContainerProject()) {
					continue
				}
				if ev.Kind == "image.pull" {
					w.progress.pull(ev)
					continue
				}
				if !done[i] {
					break sleep
				}
			}
		}
	}
}

// sameProject reports whether an event's project is the one waited on; an
// event without one (a moor from before projects) may be.
func sameProject(eventProject, project string) bool {
	return eventProject == "" || eventProject == project
}

// eventRef names an event's container as messages do: PROJECT/NAME
// outside the default project.
func eventRef(ev domain.Event) string {
	return domain.ContainerRef{Project: ev.Project, Name: ev.Container}.String()
}

// isTransient tells errors that a later try may not meet: no answer, a
// 5xx, a 429 the client gave up waiting on.
func isTransient(err error) bool {
	var ue *client.UnreachableError
	var ae *client.APIError
	return errors.As(err, &ue) || errors.As(err, &ae) && (ae.Status >= 500 || ae.Status == 429)
}

// ended is the error of a wait whose context ended: the timeout (exit 7),
// naming each container not there yet, or Ctrl-C.
func (w *waiter) ended(goals []waitGoal, done []bool, last []domain.Container) error {
	if !errors.Is(w.ctx.Err(), context.DeadlineExceeded) {
		return w.ctx.Err()
	}
	var msgs []string
	for i, goal := range goals {
		if !done[i] {
			msgs = append(msgs, w.notThere(goal, last[i]))
		}
	}
	return &exitError{exitTimeout, strings.Join(msgs, "; ")}
}

// notThere says what a container that did not reach goal in time is.
func (w *waiter) notThere(goal waitGoal, c domain.Container) string {
	want := string(goal.status)
	if goal.gone {
		want = "removed"
	}
	last := ""
	if c.Status != "" {
		last = fmt.Sprintf("; it is %s", c.Status)
		if c.StatusReason != "" {
			last += " (" + c.StatusReason + ")"
		}
		for _, in := range c.Instances {
			if in.Health == "unhealthy" || in.Health == "starting" {
				last += fmt.Sprintf(", replica %d is %s", in.Index, in.Health)
			}
		}
	}
	return fmt.Sprintf("%s: not %s after %s%s", ref(w.cl, goal.name), want, goal.timeout, last)
}

// check decides whether the container c (or the error of reading it)
// meets goal, reporting its progress on the way.
func (w *waiter) check(goal waitGoal, c domain.Container, err error) (bool, error) {
	if goal.gone {
		if client.IsStatus(err, 404) {
			return true, nil
		}
	} else if client.IsStatus(err, 404) {
		return false, &exitError{exitFailed, fmt.Sprintf("%s: removed while waiting for it to be %s", ref(w.cl, goal.name), goal.status)}
	}
	if err != nil {
		return false, err
	}
	w.progress.container(c)
	fresh := goal.since.IsZero() || c.UpdatedAt.After(goal.since)
	if !fresh || goal.gone {
		return false, nil
	}
	if c.Status == domain.StatusFailed {
		reason := c.StatusReason
		if reason == "" {
			reason = "no reason recorded"
		}
		return false, &exitError{exitFailed, fmt.Sprintf("%s failed: %s", c.Ref(), reason)}
	}
	if c.DesiredState == domain.DesiredRemoved {
		return false, &exitError{exitFailed, fmt.Sprintf("%s: is being removed while waiting for it to be %s", c.Ref(), goal.status)}
	}
	if goal.completed && c.Status == domain.StatusStopped && c.StatusCause == domain.CauseStoppedOutside {
		return true, nil // it ran to completion, as its dependents wait for
	}
	if goal.status == domain.StatusRunning && c.DesiredState == domain.DesiredStopped {
		// moor left it stopped: it stopped behind moor's back and its
		// restart policy says so.
		reason := c.StatusReason
		if reason == "" {
			reason = "stopped by someone else"
		}
		return false, &exitError{exitFailed, fmt.Sprintf("%s: stopped instead of running: %s", c.Ref(), reason)}
	}
	if c.Status != goal.status || c.ObservedGeneration < goal.generation {
		return false, nil
	}
	if goal.status == domain.StatusRunning {
		// Every replica, and only those asked for, ready for traffic.
		ready := 0
		for _, in := range c.Instances {
			if takesTraffic(in) {
				ready++
			}
		}
		if ready != goal.replicas || len(c.Instances) != goal.replicas {
			return false, nil
		}
	}
	return true, nil
}

// progress shows what a wait sees on stderr: a line per step, and the
// image pull as a bar redrawn in place on a terminal (plain lines, one per
// finished layer, otherwise).
type progress struct {
	w   io.Writer
	tty bool
	now func() time.Time

	lastStatus map[string]string // each container's status and reason last shown
	instances  map[string]string // each replica's status and health last shown, by "CONTAINER/INDEX"
	pulls      map[string]*pullState
	bar        string // the bar line on screen, "" when none
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, now: time.Now, lastStatus: map[string]string{}, instances: map[string]string{}, pulls: map[string]*pullState{}}
}

// stepf prints one line (above the bar, which is redrawn).
func (p *progress) stepf(format string, args ...any) {
	p.clearBar()
	fmt.Fprintf(p.w, format+"\n", args...)
	p.drawBar()
}

// container reports a change of status or of a replica.
func (p *progress) container(c domain.Container) {
	s := string(c.Status)
	if c.StatusReason != "" {
		s += ": " + c.StatusReason
	}
	name := c.Ref().String()
	if s != p.lastStatus[name] {
		p.lastStatus[name] = s
		p.stepf("%s: %s", name, s)
	}
	if c.Replicas < 2 && len(c.Instances) < 2 {
		return // the container's status says it all
	}
	for _, in := range c.Instances {
		s := string(in.Status)
		if in.Health != "" {
			s += " (" + in.Health + ")"
		}
		if key := fmt.Sprintf("%s/%d", name, in.Index); p.instances[key] != s {
			p.instances[key] = s
			p.stepf("%s: replica %d: %s", c.Ref(), in.Index, s)
		}
	}
}

func (p *progress) end() {
	p.clearBar()
	p.bar = ""
}

// pullState is one image's pull as its events tell it.
type pullState struct {
	image  string
	layers map[string]*layerState
	order  []string
	done   bool
}

type layerState struct {
	status         string
	current, total int64
	downloaded     bool // its bytes are all here
	complete       bool // extracted, or already there
}

// pullEvent is the data of an image.pull event (internal/reconciler).
type pullEvent struct {
	Image   string `json:"image"`
	Layer   string `json:"layer"`
	Status  string `json:"status"`
	Current int64  `json:"current"`
	Total   int64  `json:"total"`
	// Local: the image was not pulled again (built or loaded on the
	// engine, from no registry); Status says so.
	Local bool `json:"local"`
}

// pull takes one image.pull event.
func (p *progress) pull(ev domain.Event) {
	var e pullEvent
	if json.Unmarshal(ev.Data, &e) != nil || e.Image == "" {
		return
	}
	if e.Local {
		// Asked to pull again an image no registry has: said, not pulled.
		p.stepf("%s: %s", eventRef(ev), e.Status)
		return
	}
	ps := p.pulls[e.Image]
	if ps == nil {
		ps = &pullState{image: e.Image, layers: map[string]*layerState{}}
		p.pulls[e.Image] = ps
		p.stepf("%s: pulling %s", eventRef(ev), e.Image)
	}
	if ps.done {
		return
	}
	switch {
	case strings.HasPrefix(e.Status, "Status:"), strings.HasPrefix(e.Status, "Digest:"):
		if strings.HasPrefix(e.Status, "Status:") {
			ps.done = true
			n, size := ps.totals()
			p.clearBar()
			p.bar = ""
			what := fmt.Sprintf("%d layers", n)
			if n == 1 {
				what = "1 layer"
			}
			if size > 0 {
				what += ", " + megabytes(size)
			}
			p.stepf("%s: pulled %s (%s)", eventRef(ev), e.Image, what)
		}
		return
	case e.Layer == "" || strings.HasPrefix(e.Status, "Pulling from") || strings.HasSuffix(e.Image, ":"+e.Layer):
		return // about the image as a whole (its ID is the tag)
	}
	l := ps.layers[e.Layer]
	if l == nil {
		l = &layerState{}
		ps.layers[e.Layer] = l
		ps.order = append(ps.order, e.Layer)
	}
	l.status = e.Status
	switch {
	case strings.HasPrefix(e.Status, "Downloading"):
		l.current, l.total = e.Current, max(e.Total, l.total)
	case e.Status == "Verifying Checksum", e.Status == "Download complete", strings.HasPrefix(e.Status, "Extracting"):
		l.downloaded = true
		if e.Total > 0 {
			l.total = max(l.total, e.Total)
		}
	case e.Status == "Pull complete", e.Status == "Already exists":
		first := !l.complete
		l.downloaded, l.complete = true, true
		if first && !p.tty {
			done, n := ps.counts()
			p.stepf("%s: pull %s: layer %s: %s (%d/%d)", eventRef(ev), e.Image, e.Layer, e.Status, done, n)
		}
	}
	p.drawPull(ps)
}

// counts is complete layers and all layers seen.
func (ps *pullState) counts() (done, n int) {
	for _, l := range ps.layers {
		if l.complete {
			done++
		}
	}
	return done, len(ps.layers)
}

// totals is the number of layers and the bytes known.
func (ps *pullState) totals() (int, int64) {
	var size int64
	for _, l := range ps.layers {
		size += l.total
	}
	return len(ps.layers), size
}

// drawPull redraws the bar of ps (on a terminal).
func (p *progress) drawPull(ps *pullState) {
	if !p.tty {
		return
	}
	var have, total int64
	for _, l := range ps.layers {
		total += l.total
		if l.downloaded {
			have += l.total
		} else {
			have += min(l.current, l.total)
		}
	}
	done, n := ps.counts()
	const width = 24
	frac := 0.0
	if total > 0 {
		frac = float64(have) / float64(total)
	} else if n > 0 {
		frac = float64(done) / float64(n)
	}
	filled := int(frac * width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	line := fmt.Sprintf("pulling %s [%s] %3.0f%%", ps.image, bar, frac*100)
	if total > 0 {
		line += fmt.Sprintf(" %s/%s", strings.TrimSuffix(megabytes(have), " MB"), megabytes(total))
	}
	line += fmt.Sprintf(", %d/%d layers", done, n)
	p.bar = line
	p.drawBar()
}

// clearBar and drawBar erase and redraw the bar line in place.
func (p *progress) clearBar() {
	if p.tty && p.bar != "" {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func (p *progress) drawBar() {
	if p.tty && p.bar != "" {
		fmt.Fprint(p.w, "\r\x1b[K"+p.bar)
	}
}
