package backups

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/moorhq/moor/internal/backup"
	"github.com/moorhq/moor/internal/domain"
)

// lockPatience is how long a restore waits for the container's lock (the
// reconciler holds it for a pass at a time).
const lockPatience = 15 * time.Second

// Restore writes backup id back into the volume of the container cr it was
// taken from (replica 0's). The archive is first read whole from the
// target, every chunk checked and its checksum compared with the recorded
// one: a missing object (404), an archive under another key (409) or a
// damaged one (422) is refused with nothing changed. Then, under the
// container's lock (the reconciler stays off) and recorded running, the
// replicas are removed, the volume's content replaced from the archive
// read again, and the lock released: the reconciler recreates the
// replicas. The answer comes once it is recorded; the rest runs in the
// background (events backup.restored or backup.restore_failed). A restore
// a killed moor left half-way is taken up again at the next start
// (Recover).
func (s *Service) Restore(ctx context.Context, cr domain.ContainerRef, id string) (domain.Restore, error) {
	c, err := s.containers.Get(ctx, cr)
	if err != nil {
		return domain.Restore{}, err
	}
	if c.Spec.RequiresAdmin() && !domain.ActorFrom(ctx).Role.Allows(domain.RoleAdmin) {
		return domain.Restore{}, fmt.Errorf("container %q reaches outside its container (host paths, host network or devices): only admins may restore it: %w",
			c.Ref(), domain.ErrForbidden)
	}
	b, err := s.store.Backup(ctx, cr, id)
	if err != nil {
		return domain.Restore{}, err
	}
	if b.Status != domain.BackupDone {
		return domain.Restore{}, fmt.Errorf("backup %s is %s, not done: nothing to restore: %w", b.ID, b.Status, domain.ErrConflict)
	}
	if b.Kind == domain.BackupKindDump {
		return domain.Restore{}, fmt.Errorf("backup %s is the output of the type's dump command (%s), not a volume's files: "+
			"restore it with the database's own tools (not done by moor yet): %w", b.ID, b.Volume, domain.ErrConflict)
	}
	if !hasVolume(c, b.Volume) {
		return domain.Restore{}, fmt.Errorf("container %s has no volume %q any more: the backup cannot go back: %w", c.Name, b.Volume, domain.ErrConflict)
	}
	// The volume cannot be replaced while a helper reads it.
	all, err := s.store.Backups(ctx, cr)
	if err != nil {
		return domain.Restore{}, err
	}
	for _, o := range all {
		if o.Status == domain.BackupRunning && o.ContainerID == c.ID {
			return domain.Restore{}, fmt.Errorf("a backup of container %s is running (%s): restore once it is done: %w", c.Name, o.ID, domain.ErrConflict)
		}
	}
	if err := s.verify(ctx, b); err != nil {
		return domain.Restore{}, err
	}
	lockCtx, err := s.lock(ctx, c.ID)
	if err != nil {
		return domain.Restore{}, err
	}
	r, err := s.store.StartRestore(ctx, domain.Restore{ID: newUUID(), BackupID: b.ID, ContainerID: c.ID, Container: c.Name})
	if err != nil {
		s.unlock(c.ID)
		return domain.Restore{}, err
	}
	go s.finishRestore(lockCtx, r, b, false)
	return r, nil
}

func hasVolume(c domain.Container, name string) bool {
	for _, v := range c.Spec.Volumes {
		if v.Name == name && v.HostPath == "" {
			return true
		}
	}
	return false
}

// lock takes the container's lock, waiting up to lockPatience; the
// context returned ends when the lock is lost.
func (s *Service) lock(ctx context.Context, id string) (context.Context, error) {
	deadline := time.Now().Add(lockPatience)
	for {
		lockCtx, ok, err := s.tryLock(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("lock the container: %w", err)
		}
		if ok {
			return lockCtx, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the container is busy (moor is acting on it): try again: %w", domain.ErrConflict)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tryLock takes the container's lock without waiting. The database's
// advisory locks are reentrant on one session, so this process's own
// holders (a restore, a paused backup) are kept apart here.
func (s *Service) tryLock(ctx context.Context, id string) (context.Context, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[id] {
		return nil, false, nil
	}
	lockCtx, ok, err := s.cfg.Locker.TryLock(ctx, id)
	if err != nil || !ok {
		return nil, false, err
	}
	if s.held == nil {
		s.held = map[string]bool{}
	}
	s.held[id] = true
	return lockCtx, true, nil
}

// unlock releases a lock tryLock took.
func (s *Service) unlock(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Locker.Unlock(context.Background(), id)
	delete(s.held, id)
}

// verify reads b's archive whole, checking every chunk, and compares its
// checksum with the recorded one.
func (s *Service) verify(ctx context.Context, b domain.Backup) error {
	rc, r, err := s.open(ctx, b)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		return archiveErr(b, err)
	}
	if r.Sum() != b.SHA256 {
		return fmt.Errorf("backup %s: the archive %s holds content with checksum %s, not the recorded %s: %w",
			b.ID, b.ObjectKey, r.Sum(), b.SHA256, domain.ErrInvalid)
	}
	return nil
}

// open opens b's archive in its target.
func (s *Service) open(ctx context.Context, b domain.Backup) (io.Closer, *backup.Reader, error) {
	if b.Target != s.cfg.TargetName {
		return nil, nil, fmt.Errorf("backup %s is in target %q, which this moor does not have: %w", b.ID, b.Target, domain.ErrConflict)
	}
	rc, err := s.cfg.Target.Get(ctx, b.ObjectKey)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, nil, fmt.Errorf("backup %s: its archive %s is missing from target %s: %w", b.ID, b.ObjectKey, b.Target, domain.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s: open its archive: %w", b.ID, err)
	}
	r, _, err := backup.NewReader(rc, s.cfg.Key)
	if err != nil {
		rc.Close()
		return nil, nil, archiveErr(b, err)
	}
	return rc, r, nil
}

// archiveErr says what is wrong with b's archive, with the status that
// fits: another key is a conflict of settings, damage an invalid archive.
func archiveErr(b domain.Backup, err error) error {
	switch {
	case errors.Is(err, backup.ErrWrongKey):
		return fmt.Errorf("backup %s: the archive %s was written under another key (MOOR_SECRET_KEY differs): %w: %w", b.ID, b.ObjectKey, domain.ErrConflict, err)
	case errors.Is(err, backup.ErrCorrupt):
		return fmt.Errorf("backup %s: the archive %s is damaged or truncated: %w: %w", b.ID, b.ObjectKey, domain.ErrInvalid, err)
	}
	return fmt.Errorf("backup %s: reading the archive %s: %w", b.ID, b.ObjectKey, err)
}

// finishRestore does restore r under the lock lockCtx stands for, records
// its outcome and releases the lock (then the reconciler, woken by the
// event, recreates the replicas). check: verify the archive first (a
// restore taken up again: nothing says it was).
func (s *Service) finishRestore(lockCtx context.Context, r domain.Restore, b domain.Backup, check bool) {
	log := s.log.With("restore", r.ID, "backup", b.ID, "container", r.Container, "volume", r.Volume)
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(lockCtx, cancel)
	err := func() error {
		c, err := s.store.GetContainerByID(ctx, r.ContainerID)
		if err != nil {
			return err
		}
		if check {
			if err := s.verify(ctx, b); err != nil {
				return err
			}
		}
		return s.replace(ctx, c, b)
	}()
	stop()
	cancel()
	if lockCtx.Err() != nil {
		// The lock went with its session (moor is stopping, or the database
		// went away): the row stays running and the next start takes it up.
		log.Warn("restore interrupted: the container's lock was lost; taken up again at the next start", "err", err)
		s.unlock(r.ContainerID)
		return
	}
	s.unlock(r.ContainerID)
	errText := ""
	if err != nil {
		errText = err.Error()
		log.Warn("restore failed", "err", err)
	} else {
		log.Info("restore done")
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	if _, err := s.store.FinishRestore(fctx, r.ID, errText); err != nil {
		log.Error("record restore outcome", "err", err)
	}
}

// replace removes c's replicas and replaces the volume's content with b's
// archive, read again from the target.
func (s *Service) replace(ctx context.Context, c domain.Container, b domain.Backup) error {
	states, err := s.engine.List(ctx, map[string]string{domain.LabelOwner: s.cfg.InstallationID, domain.LabelID: c.ID})
	if err != nil {
		return fmt.Errorf("list the replicas: %w", err)
	}
	for _, st := range states {
		if err := s.engine.Remove(ctx, st.RuntimeID); err != nil {
			return fmt.Errorf("remove replica %s: %w", st.Name, err)
		}
	}
	volume := domain.VolumeName(c.Project, c.Name, b.Volume, 0)
	// The reconciler's labels, so the volume goes with the container.
	if err := s.engine.EnsureVolume(ctx, volume, map[string]string{
		domain.LabelOwner: s.cfg.InstallationID, domain.LabelID: c.ID, domain.LabelName: c.Name, domain.LabelType: c.Type,
		domain.LabelReplica: strconv.Itoa(0), domain.LabelProject: c.Project,
	}); err != nil {
		return err
	}
	rc, r, err := s.open(ctx, b)
	if err != nil {
		return err
	}
	defer rc.Close()
	err = s.engine.ImportVolume(ctx, domain.VolumeCopy{Volume: volume, Image: c.Image,
		Labels: map[string]string{domain.LabelOwner: s.cfg.InstallationID, domain.LabelProject: c.Project, domain.LabelName: c.Name}}, r)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, r); err != nil { // past the tar's end: the sum is known
		return archiveErr(b, err)
	}
	if r.Sum() != b.SHA256 {
		return fmt.Errorf("backup %s: the archive changed after it was checked (checksum %s, recorded %s): the volume holds it anyway: %w",
			b.ID, r.Sum(), b.SHA256, domain.ErrInvalid)
	}
	return nil
}

// resume takes up the restores a stopped or killed moor left running: the
// container's lock is taken now (call it before the reconciler runs, so it
// does not recreate the replicas over a half-written volume), the rest in
// the background, the archive checked again first.
func (s *Service) resume(ctx context.Context) error {
	rs, err := s.store.RunningRestores(ctx)
	if err != nil {
		return fmt.Errorf("backups: running restores: %w", err)
	}
	for _, r := range rs {
		lockCtx, ok, err := s.tryLock(ctx, r.ContainerID)
		if err != nil {
			return fmt.Errorf("backups: lock container %s: %w", r.Container, err)
		}
		if !ok {
			s.log.Warn("a restore left running is on a container another moor process holds; it is taken up at the next start",
				"restore", r.ID, "container", r.Container)
			continue
		}
		b, err := s.store.Backup(ctx, domain.ContainerRef{Project: r.Project, Name: r.Container}, r.BackupID)
		if err != nil {
			s.unlock(r.ContainerID)
			return fmt.Errorf("backups: backup of restore %s: %w", r.ID, err)
		}
		s.log.Warn("taking up a restore a stopped moor left half-way", "restore", r.ID, "container", r.Container, "volume", r.Volume)
		go s.finishRestore(lockCtx, r, b, true)
	}
	return nil
}
