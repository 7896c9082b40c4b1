package backups

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// progressEvery is how often a running backup says how far it is.
const progressEvery = 250 * time.Millisecond

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress records a backup.progress event (bytes of tar read so far)
// every progressEvery while n moves, until the returned function is
// called. The total is not known before the end (the engine streams the
// volume without its size).
func (s *Service) progress(ctx context.Context, b domain.Backup, n *atomic.Int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if cur := n.Load(); cur != last {
				last = cur
				if _, err := s.store.AppendEvent(ctx, "backup.progress", b.ContainerID, b.Container,
					map[string]any{"id": b.ID, "volume": b.Volume, "bytes": cur}); err != nil && ctx.Err() == nil {
					s.log.Debug("backup progress event", "backup", b.ID, "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// replica0 is the runtime instance of c's first replica ("" when there is
// none) and whether it runs (or is paused).
func (s *Service) replica0(ctx context.Context, c domain.Container) (domain.InstanceState, error) {
	states, err := s.engine.List(ctx, map[string]string{domain.LabelOwner: s.cfg.InstallationID, domain.LabelID: c.ID, domain.LabelReplica: "0"})
	if err != nil {
		return domain.InstanceState{}, fmt.Errorf("find replica 0: %w", err)
	}
	for _, st := range states {
		if st.Running || st.Status == "paused" {
			return st, nil
		}
	}
	if len(states) > 0 {
		return states[0], nil
	}
	return domain.InstanceState{}, nil
}

// pause freezes c's first replica for a backup (type backup: {pause:
// true}), holding the container's lock meanwhile so the reconciler does
// not take the paused replica for a stopped one. A replica that does not
// run is left as it is: its files do not move. The function returned
// resumes it and releases the lock.
func (s *Service) pause(ctx context.Context, c domain.Container) (unpause func(), err error) {
	if _, err := s.lock(ctx, c.ID); err != nil {
		return nil, fmt.Errorf("pause for the backup: %w", err)
	}
	unlock := func() { s.unlock(c.ID) }
	st, err := s.replica0(ctx, c)
	if err != nil {
		unlock()
		return nil, err
	}
	if !st.Running {
		return unlock, nil
	}
	if err := s.engine.Pause(ctx, st.RuntimeID); err != nil {
		unlock()
		return nil, fmt.Errorf("pause for the backup: %w", err)
	}
	s.log.Info("container paused for its backup", "container", c.Name)
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.engine.Unpause(uctx, st.RuntimeID); err != nil {
			s.log.Error("unpause after the backup", "container", c.Name, "err", err)
		}
		unlock()
	}, nil
}

// dumpTar runs the type's dump command in c's first replica and returns a
// tar stream holding its output as the one file name. A tar entry needs
// its size first, so the output is spooled to a temporary file (removed
// from its directory at once: nothing is left behind, even by a crash).
func (s *Service) dumpTar(ctx context.Context, c domain.Container, cmd []string, name string) (io.ReadCloser, error) {
	st, err := s.replica0(ctx, c)
	if err != nil {
		return nil, err
	}
	if !st.Running {
		return nil, fmt.Errorf("the dump runs inside the container, and container %s is not running: %w", c.Name, domain.ErrConflict)
	}
	f, err := os.CreateTemp("", "moor-dump-*")
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	os.Remove(f.Name())
	if err := s.engine.ExecOutput(ctx, st.RuntimeID, cmd, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("dump: %w", err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dump: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg, Format: tar.FormatPAX})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return &dumpReader{PipeReader: pr, f: f}, nil
}

// dumpReader is dumpTar's stream; Close drops the spooled output.
type dumpReader struct {
	*io.PipeReader
	f *os.File
}

func (d *dumpReader) Close() error {
	d.PipeReader.Close()
	return d.f.Close()
}
