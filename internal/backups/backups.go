// Package backups takes volume backups of containers (issue 12): each named
// volume of a container's first replica is read through the runtime's
// helper (ExportVolume), written as an encrypted archive (package backup)
// and stored in a target, streaming, with a row per volume that says how
// it went.
package backups

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/moorhq/moor/internal/backup"
	"github.com/moorhq/moor/internal/domain"
)

// Store records backups.
type Store interface {
	StartBackups(ctx context.Context, bs []domain.Backup) ([]domain.Backup, error)
	FinishBackup(ctx context.Context, id, sha string, tarBytes, storedBytes int64, errText string) (domain.Backup, error)
	FailRunningBackups(ctx context.Context, why string) (int, error)
	Backups(ctx context.Context, cr domain.ContainerRef) ([]domain.Backup, error)
	Backup(ctx context.Context, cr domain.ContainerRef, id string) (domain.Backup, error)
	StartRestore(ctx context.Context, r domain.Restore) (domain.Restore, error)
	FinishRestore(ctx context.Context, id, errText string) (domain.Restore, error)
	RunningRestores(ctx context.Context) ([]domain.Restore, error)
	GetContainerByID(ctx context.Context, id string) (domain.Container, error)
	AppendEvent(ctx context.Context, kind, containerID, name string, data any) (int64, error)
}

// Locker holds a container's lock, which keeps the reconciler (of every
// moor process) off it: a Locker of the service's own, so its session is
// not the reconciler's (store.Locker).
type Locker interface {
	TryLock(ctx context.Context, id string) (context.Context, bool, error)
	Unlock(ctx context.Context, id string)
}

// Containers finds the container a request names, checking the caller may
// see it (lifecycle.Service).
type Containers interface {
	Get(ctx context.Context, cr domain.ContainerRef) (domain.Container, error)
}

// Engine copies a volume's content out.
type Engine interface {
	ExportVolume(ctx context.Context, spec domain.VolumeCopy) (io.ReadCloser, error)
	ImportVolume(ctx context.Context, spec domain.VolumeCopy, r io.Reader) error
	EnsureVolume(ctx context.Context, name string, labels map[string]string) error
	List(ctx context.Context, labels map[string]string) ([]domain.InstanceState, error)
	Remove(ctx context.Context, id string) error
	Pause(ctx context.Context, id string) error
	Unpause(ctx context.Context, id string) error
	ExecOutput(ctx context.Context, id string, cmd []string, w io.Writer) error
}

// DefaultWorkers is how many volumes are archived at once when Config
// names no number.
const DefaultWorkers = 2

// Config is the service's settings.
type Config struct {
	// InstallationID labels the helper containers (SweepHelpers finds
	// those a crash leaves).
	InstallationID string
	// Target is where archives go, named TargetName in the rows.
	Target     backup.Target
	TargetName string
	// Key is the backup key (backup.KeyFrom).
	Key []byte
	// Workers bounds the volumes archived at once (DefaultWorkers when 0).
	Workers int
	// Locker keeps the reconciler off a container being restored.
	Locker Locker
}

// Service takes and lists backups.
type Service struct {
	store      Store
	containers Containers
	engine     Engine
	cfg        Config
	log        *slog.Logger

	jobs chan job
	wg   sync.WaitGroup

	mu   sync.Mutex
	held map[string]bool // container ids whose lock this service holds
}

// job is one container's backup: its volumes (or its dump), archived one
// after the other by one worker, so a pause spans them all.
type job struct {
	c     domain.Container
	items []item
	pause bool     // freeze the container while its volumes are read
	dump  []string // the command whose output is stored instead (DumpFile: items[0].b.Volume)
}

// item is one archive of a job.
type item struct {
	b    domain.Backup
	copy domain.VolumeCopy // a volume's; zero for a dump
}

// New returns a service; Run does the work.
func New(st Store, containers Containers, eng Engine, cfg Config, logger *slog.Logger) (*Service, error) {
	if cfg.Target == nil || cfg.TargetName == "" {
		return nil, errors.New("backups: no target")
	}
	if len(cfg.Key) != backup.KeySize {
		return nil, fmt.Errorf("backups: key is %d bytes, want %d", len(cfg.Key), backup.KeySize)
	}
	if cfg.Locker == nil {
		return nil, errors.New("backups: no locker")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: st, containers: containers, engine: eng, cfg: cfg, log: logger,
		jobs: make(chan job, 1024)}, nil
}

// Recover marks the backups a stopped or killed moor left running as
// failed and takes up the restores it left half-way: call it at start,
// before Run and before the reconciler runs, in the one process that takes
// backups.
func (s *Service) Recover(ctx context.Context) error {
	n, err := s.store.FailRunningBackups(ctx, "interrupted: moor stopped before the backup finished; take it again")
	if err != nil {
		return fmt.Errorf("backups: recover: %w", err)
	}
	if n > 0 {
		s.log.Warn("backups left running by an earlier moor marked failed", "count", n)
	}
	return s.resume(ctx)
}

// Run archives queued volumes, Workers at a time, until ctx ends; the
// backups running then are recorded failed.
func (s *Service) Run(ctx context.Context) error {
	for range s.cfg.Workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-s.jobs:
					s.take(ctx, j)
				}
			}
		}()
	}
	<-ctx.Done()
	s.wg.Wait()
	// Queued and never started: failed, so no row stays running.
	for {
		select {
		case j := <-s.jobs:
			for _, it := range j.items {
				s.finish(it.b, backup.Result{}, errors.New("moor stopped before the backup started"))
			}
		default:
			return nil
		}
	}
}

// Create records a backup of each named volume of the container cr (host
// paths are skipped, and said so) as running and queues them; the
// archives are written afterwards (Run).
func (s *Service) Create(ctx context.Context, cr domain.ContainerRef) (domain.BackupsStarted, error) {
	bs, skipped, err := s.create(ctx, cr)
	if skipped == nil {
		skipped = []domain.SkippedVolume{}
	}
	return domain.BackupsStarted{Backups: bs, Skipped: skipped}, err
}

func (s *Service) create(ctx context.Context, cr domain.ContainerRef) ([]domain.Backup, []domain.SkippedVolume, error) {
	c, err := s.containers.Get(ctx, cr)
	if err != nil {
		return nil, nil, err
	}
	// As lifecycle does: what only an admin may deploy, only an admin
	// may operate.
	if c.Spec.RequiresAdmin() && !domain.ActorFrom(ctx).Role.Allows(domain.RoleAdmin) {
		return nil, nil, fmt.Errorf("container %q reaches outside its container (host paths, host network or devices): only admins may back it up: %w",
			c.Ref(), domain.ErrForbidden)
	}
	// A volume being replaced is no consistent source.
	rs, err := s.store.RunningRestores(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range rs {
		if r.ContainerID == c.ID {
			return nil, nil, fmt.Errorf("container %s is being restored from backup %s: back it up once that is done: %w", c.Name, r.BackupID, domain.ErrConflict)
		}
	}
	var bs []domain.Backup
	j := job{c: c}
	var skipped []domain.SkippedVolume
	now := time.Now().UTC()
	row := func(volume, kind string) domain.Backup {
		id := newUUID()
		key := volume
		if kind == domain.BackupKindDump {
			key = "dump-" + volume
		}
		return domain.Backup{ID: id, ContainerID: c.ID, Project: c.Project, Container: c.Name, Volume: volume, Kind: kind,
			Target: s.cfg.TargetName, ObjectKey: objectKey(c.Project, c.Name, key, now, id)}
	}
	spec := c.Spec.Backup
	if spec != nil && len(spec.Dump) > 0 {
		// The dump is what is stored: the volumes' files are not.
		file := spec.DumpFile
		if file == "" {
			file = domain.DefaultDumpFile
		}
		for _, v := range c.Spec.Volumes {
			skipped = append(skipped, domain.SkippedVolume{Volume: v.Name, Reason: "the type's dump (" + file + ") is stored instead"})
		}
		bs = append(bs, row(file, domain.BackupKindDump))
		j.dump = spec.Dump
	} else {
		j.pause = spec != nil && spec.Pause
		for _, v := range c.Spec.Volumes {
			if v.HostPath != "" {
				skipped = append(skipped, domain.SkippedVolume{Volume: v.Name, Reason: "a host path (" + v.HostPath + "), not a volume moor owns: back it up on the host"})
				continue
			}
			bs = append(bs, row(v.Name, domain.BackupKindVolume))
		}
	}
	if len(bs) == 0 {
		why := "it has no volumes"
		if len(skipped) > 0 {
			why = "its volumes are host paths, which moor does not back up"
		}
		return nil, skipped, fmt.Errorf("container %s has nothing to back up: %s: %w", c.Name, why, domain.ErrConflict)
	}
	if len(s.jobs) >= cap(s.jobs) {
		return nil, skipped, fmt.Errorf("too many backups queued (%d): try again later: %w", len(s.jobs), domain.ErrUnavailable)
	}
	bs, err = s.store.StartBackups(ctx, bs)
	if err != nil {
		return nil, skipped, err
	}
	for _, b := range bs {
		it := item{b: b}
		if b.Kind == domain.BackupKindVolume {
			it.copy = domain.VolumeCopy{
				Volume: domain.VolumeName(c.Project, c.Name, b.Volume, 0),
				Image:  c.Image,
				Labels: map[string]string{domain.LabelOwner: s.cfg.InstallationID, domain.LabelProject: c.Project, domain.LabelName: c.Name},
			}
		}
		j.items = append(j.items, it)
	}
	select {
	case s.jobs <- j:
	default: // filled in between: recorded, not lost
		for _, b := range bs {
			s.finish(b, backup.Result{}, errors.New("too many backups queued"))
		}
	}
	return bs, skipped, nil
}

// List lists the backups of the container cr, newest first.
func (s *Service) List(ctx context.Context, cr domain.ContainerRef) ([]domain.Backup, error) {
	if _, err := s.containers.Get(ctx, cr); err != nil {
		return nil, err
	}
	return s.store.Backups(ctx, cr)
}

// take archives a job's items one after the other, the container paused
// around them when its type asks, and records each outcome.
func (s *Service) take(ctx context.Context, j job) {
	if j.pause {
		unpause, err := s.pause(ctx, j.c)
		if err != nil {
			for _, it := range j.items {
				s.log.Warn("backup failed", "backup", it.b.ID, "container", it.b.Container, "err", err)
				s.finish(it.b, backup.Result{}, err)
			}
			return
		}
		defer unpause()
	}
	for _, it := range j.items {
		log := s.log.With("backup", it.b.ID, "container", it.b.Container, "volume", it.b.Volume)
		log.Info("backup started", "key", it.b.ObjectKey, "kind", it.b.Kind)
		open := func(ctx context.Context) (io.ReadCloser, error) { return s.engine.ExportVolume(ctx, it.copy) }
		if j.dump != nil {
			open = func(ctx context.Context) (io.ReadCloser, error) { return s.dumpTar(ctx, j.c, j.dump, it.b.Volume) }
		}
		res, err := s.archive(ctx, it.b, open)
		if err != nil {
			log.Warn("backup failed", "err", err)
		} else {
			log.Info("backup done", "bytes", res.TarBytes, "stored", res.StoredBytes, "sha256", res.SHA256)
		}
		s.finish(it.b, res, err)
	}
}

// archive streams the tar open gives through the archive writer into the
// target: a pipe, no temporary file, bounded memory; backup.progress
// events say how far it is every progressEvery.
func (s *Service) archive(ctx context.Context, b domain.Backup, open func(context.Context) (io.ReadCloser, error)) (backup.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src, err := open(ctx)
	if err != nil {
		return backup.Result{}, err
	}
	defer src.Close()
	counted := &countingReader{r: src}
	stopProgress := s.progress(ctx, b, &counted.n)
	defer stopProgress()
	pr, pw := io.Pipe()
	var res backup.Result
	werr := make(chan error, 1)
	go func() {
		err := func() error {
			w, err := backup.NewWriter(pw, s.cfg.Key, backup.Meta{Kind: b.Kind, Container: b.Container,
				Volume: b.Volume, Created: b.CreatedAt,
				Labels: map[string]string{"project": b.Project, "backup": b.ID}})
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, counted); err != nil {
				w.Close()
				return fmt.Errorf("reading %s %s: %w", b.Kind, b.Volume, err)
			}
			res, err = w.Close()
			return err
		}()
		pw.CloseWithError(err)
		werr <- err
	}()
	perr := s.cfg.Target.Put(ctx, b.ObjectKey, pr, -1)
	pr.CloseWithError(errors.New("the target stopped reading"))
	cancel() // a writer blocked on the engine ends
	if err := <-werr; err != nil {
		return backup.Result{}, err
	}
	if perr != nil {
		return backup.Result{}, perr
	}
	return res, nil
}

// finish records b's outcome, on a context of its own: Run's may have
// ended, which is one reason to record a failure.
func (s *Service) finish(b domain.Backup, res backup.Result, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errText := ""
	if err != nil {
		errText = err.Error()
		if errText == "" {
			errText = "failed"
		}
	}
	if _, ferr := s.store.FinishBackup(ctx, b.ID, res.SHA256, res.TarBytes, res.StoredBytes, errText); ferr != nil {
		s.log.Error("record backup outcome", "backup", b.ID, "err", ferr)
	}
}

// objectKey is where a backup's archive is stored:
// volumes/<project>/<container>/<volume>/<time>-<id>.moorbk, each part
// reduced to the characters keys allow.
func objectKey(project, container, volume string, at time.Time, id string) string {
	return "volumes/" + keyPart(project) + "/" + keyPart(container) + "/" + keyPart(volume) + "/" +
		strings.ToLower(at.Format("20060102t150405z")) + "-" + id + ".moorbk"
}

func keyPart(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || (c == '.' && i > 0)) {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
