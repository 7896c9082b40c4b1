//go:build linux

package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// The sides of the latency benchmark.
const (
	sideMoor = "moor"
	// sideDocker is the reference: a plain `docker run -d` of the image on
	// moor's network.
	sideDocker = "docker run"
	// sideDockerOpts is `docker run -d` with what moor asks of the engine for
	// a testapp container (named volume, memory limit, restart policy,
	// network aliases, hostname, env, exposed port): it tells how much of
	// the gap is the engine's cost of those options rather than moor's own.
	sideDockerOpts = "docker run + moor's options"
)

var sides = []string{sideMoor, sideDocker, sideDockerOpts}

// mark is a point in one deploy's timeline.
type mark struct {
	label string
	at    time.Time
}

// sample is one timed deploy.
type sample struct {
	side  string
	name  string
	marks []mark // first: start of the timed window, last: its end
}

func (s sample) total() time.Duration { return s.marks[len(s.marks)-1].at.Sub(s.marks[0].at) }

// latency runs the interleaved rounds.
func (b *bench) latency(ctx context.Context) error {
	log.Printf("warm-up: one deploy per side (moor's first also creates the network %s)", b.o.network)
	for _, side := range sides {
		s, err := b.deployOnce(ctx, side, "w")
		if err != nil {
			return fmt.Errorf("warm-up %s: %w", side, err)
		}
		if s != nil {
			b.res.warmup = append(b.res.warmup, *s)
		}
	}
	b.res.samples = map[string][]sample{}
	for i := 0; i < b.o.rounds; i++ {
		var line string
		for k := range sides {
			side := sides[(i+k)%len(sides)]
			s, err := b.deployOnce(ctx, side, fmt.Sprint(i))
			if err != nil {
				return err
			}
			if s != nil {
				b.res.samples[side] = append(b.res.samples[side], *s)
				line += fmt.Sprintf("  %s %s", side, ms(s.total()))
			}
		}
		log.Printf("round %2d/%d:%s", i+1, b.o.rounds, line)
	}
	if n, err := dockerLines(ctx, "ps", "-aq", "--filter", "label=moor.owner="+b.installation); err != nil {
		return err
	} else if len(n) > 0 {
		b.fail.add("%d moor container(s) left after the latency rounds", len(n))
	}
	return nil
}

// deployOnce times one deploy on a side, then removes it outside the timed
// window. A failed deploy is recorded as a failure and gives a nil sample;
// the error return is for the bench's own trouble (ctx ended).
func (b *bench) deployOnce(ctx context.Context, side, idx string) (*sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var s *sample
	var err error
	switch side {
	case sideMoor:
		s, err = b.moorDeploy(ctx, "b-"+b.o.runID+"-"+idx)
	case sideDocker:
		s, err = b.dockerDeploy(ctx, "bench-dr-"+b.o.runID+"-"+idx, false)
	case sideDockerOpts:
		s, err = b.dockerDeploy(ctx, "bench-dro-"+b.o.runID+"-"+idx, true)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b.fail.add("%s deploy %s: %v", side, idx, err)
		return nil, nil
	}
	time.Sleep(b.o.settle)
	return s, nil
}

// moorDeploy: POST, then wait for the container.running event.
func (b *bench) moorDeploy(ctx context.Context, name string) (*sample, error) {
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := b.api.create(wctx, name); err != nil {
		return nil, err
	}
	tAPI := time.Now()
	kind, t1, err := b.hub.wait(wctx, name, "container.running", "container.failed")
	if err != nil {
		b.removeMoor(ctx, name)
		return nil, err
	}
	if kind == "container.failed" {
		c, _, _ := b.api.get(ctx, name)
		b.removeMoor(ctx, name)
		return nil, fmt.Errorf("%s failed: %s", name, c.StatusReason)
	}
	dockerName := domain.DockerName(domain.DefaultProject, name, 0)
	b.dev.wait(ctx, dockerName, "start", 3*time.Second) // for the breakdown only
	s := &sample{side: sideMoor, name: name, marks: []mark{
		{"POST sent", t0},
		{"202 received", tAPI},
		{"volume created", b.dev.at(domain.VolumeName(domain.DefaultProject, name, "data", 0), "create")},
		{"container created", b.dev.at(dockerName, "create")},
		{"container started", b.dev.at(dockerName, "start")},
		{"running event received", t1},
	}}
	if err := b.removeMoor(ctx, name); err != nil {
		return nil, err
	}
	return s, nil
}

// removeMoor deletes through the API and waits until moor reports it gone.
func (b *bench) removeMoor(ctx context.Context, name string) error {
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := b.api.remove(wctx, name); err != nil {
		return err
	}
	_, _, err := b.hub.wait(wctx, name, "container.removed")
	return err
}

// dockerArgs is the `docker run` command line of a side.
func (b *bench) dockerArgs(name string, opts bool) []string {
	args := []string{"run", "-d", "--name", name,
		"--label", "moor.bench=1", "--label", "moor.bench.run=" + b.o.runID,
		"--network", b.o.network}
	if opts {
		// What moor's engine adapter sends for a testapp container (see
		// internal/engine createOptions and internal/catalog/builtin/testapp.yaml);
		// the health check comes with the image (buildHealthImage).
		args = append(args,
			"--hostname", name+"-0",
			"--network-alias", name+".moor.internal", "--network-alias", "0."+name+".moor.internal",
			"--mount", "type=volume,source="+name+"-data,target=/data,volume-label=moor.bench=1,volume-label=moor.bench.run="+b.o.runID,
			"--memory", "64m", "--restart", "unless-stopped", "--expose", "8080/tcp",
			"-e", "GREETING=hello", "-e", "MODE=web", "-e", "SECRET_TOKEN="+randHex(12),
		)
	}
	if opts {
		return append(args, b.healthImage)
	}
	return append(args, b.o.image)
}

// dockerDeploy: exec `docker run -d` and time it until it returns.
func (b *bench) dockerDeploy(ctx context.Context, name string, opts bool) (*sample, error) {
	side := sideDocker
	if opts {
		side = sideDockerOpts
	}
	args := b.dockerArgs(name, opts)
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	t0 := time.Now()
	_, err := docker(wctx, args...)
	t1 := time.Now()
	if err != nil {
		docker(ctx, "rm", "-f", "-v", name)
		return nil, err
	}
	b.dev.wait(ctx, name, "start", 3*time.Second)
	marks := []mark{{"docker run exec'd", t0}}
	if opts {
		marks = append(marks, mark{"volume created", b.dev.at(name+"-data", "create")})
	}
	marks = append(marks,
		mark{"container created", b.dev.at(name, "create")},
		mark{"container started", b.dev.at(name, "start")},
		mark{"docker run returned", t1})
	s := &sample{side: side, name: name, marks: marks}
	if _, err := docker(ctx, "rm", "-f", "-v", name); err != nil {
		return nil, err
	}
	if opts {
		if _, err := docker(ctx, "volume", "rm", name+"-data"); err != nil {
			return nil, err
		}
	}
	return s, nil
}
