// Package engine is moor's adapter to the Docker engine. It is the only
// package that imports the Docker SDK (github.com/moby/moby/client); its API
// uses only the standard library and domain types.
//
// Errors wrap the domain sentinels where the caller must tell cases apart:
// domain.ErrUnavailable when the engine cannot be reached (connection refused
// or lost, socket missing, engine answering 503), domain.ErrNotFound for a
// missing object, domain.ErrConflict for a name or state conflict. Other
// engine errors are returned with the engine's message. Context errors are
// returned as they are (errors.Is(err, context.Canceled) holds).
//
// Tested against Docker Engine 20.10 (API 1.41) and written for later ones:
// the client negotiates the API version on its first successful request.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/moorhq/moor/internal/domain"
)

// Docker is a Docker engine client. It is safe for concurrent use.
type Docker struct {
	cli   *client.Client
	log   *slog.Logger
	host  string
	netMu sync.Mutex // serialises EnsureNetwork in this process
	// node is the engine's name (its host name), read once the engine
	// answers: where the instances it reports run.
	node atomic.Pointer[string]
	// helpers holds the IDs of the volume-copy helpers this client is
	// using, which SweepHelpers leaves alone.
	helpers sync.Map
}

// New returns a client of the engine at host ("unix:///var/run/docker.sock",
// "tcp://host:2376"...), or of the one the environment names (DOCKER_HOST,
// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION) when host is "".
// It does not contact the engine: the API version is negotiated on the first
// request that gets an answer, so New succeeds while the engine is down and
// the client works once it is up. A nil logger discards.
func New(host string, logger *slog.Logger) (*Docker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// API-version negotiation is the default of this client (and
	// client.WithAPIVersionNegotiation a deprecated no-op): only
	// DOCKER_API_VERSION, read by FromEnv, pins a version.
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Docker{
		cli:  cli,
		log:  logger.With("component", "engine"),
		host: cli.DaemonHost(),
	}, nil
}

// Host is the engine address the client uses.
func (d *Docker) Host() string { return d.host }

// Close releases the client's idle connections. Streams still open (Events)
// end when their context does.
func (d *Docker) Close() error {
	return d.cli.Close()
}

// Ping checks that the engine answers, negotiating the API version if that
// has not happened yet. Failures wrap domain.ErrUnavailable.
func (d *Docker) Ping(ctx context.Context) error {
	_, err := d.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("docker ping: %w: %w", domain.ErrUnavailable, ctx.Err())
		}
		return fmt.Errorf("docker ping %s: %w: %w", d.host, domain.ErrUnavailable, err)
	}
	if d.node.Load() == nil {
		if info, err := d.cli.Info(ctx, client.InfoOptions{}); err == nil {
			d.node.Store(&info.Info.Name)
		}
	}
	return nil
}

// Node is the engine's name ("" until an answer to Ping gave it).
func (d *Docker) Node() string {
	if n := d.node.Load(); n != nil {
		return *n
	}
	return ""
}

// wrap adds op to err and the domain sentinel that matches it.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err):
		return fmt.Errorf("%s: %w: %w", op, domain.ErrUnavailable, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %w", op, domain.ErrNotFound, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%s: %w: %w", op, domain.ErrConflict, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// labelFilters turns a label set into engine filters: key=value, or key alone
// for an empty value (the label is present, whatever its value).
func labelFilters(labels map[string]string) client.Filters {
	f := client.Filters{}
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	return f
}

// hasLabels reports whether have carries every label of want (an empty value
// in want matches any value).
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		hv, ok := have[k]
		if !ok || (v != "" && hv != v) {
			return false
		}
	}
	return true
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
