//go:build !unix

package testenv

import (
	"errors"
	"runtime"
)

// cluster is not started here: the throwaway cluster takes Unix process
// credentials and signals.
type cluster struct{}

func startCluster() (*cluster, error) {
	return nil, errors.New("no throwaway PostgreSQL on " + runtime.GOOS + ": set " + EnvDatabaseURL)
}

func (c *cluster) adminURL() string { return "" }

func (c *cluster) stop() {}
