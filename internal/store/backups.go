package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

const backupColumns = `id::text, coalesce(container_id::text, ''), project, container_name, volume, kind, target, object_key,
	status, error, sha256, tar_bytes, stored_bytes, created_by, created_at, finished_at`

func scanBackup(r pgx.CollectableRow) (domain.Backup, error) {
	var b domain.Backup
	err := r.Scan(&b.ID, &b.ContainerID, &b.Project, &b.Container, &b.Volume, &b.Kind, &b.Target, &b.ObjectKey,
		&b.Status, &b.Error, &b.SHA256, &b.TarBytes, &b.StoredBytes, &b.CreatedBy, &b.CreatedAt, &b.FinishedAt)
	return b, err
}

// StartBackups records bs (ID, container, volume, target and object key
// set) as running, with a backup.started event each, in one transaction.
func (s *Store) StartBackups(ctx context.Context, bs []domain.Backup) ([]domain.Backup, error) {
	actor := domain.ActorFrom(ctx).String()
	out := make([]domain.Backup, 0, len(bs))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		for _, b := range bs {
			rows, err := tx.Query(ctx, `
				INSERT INTO volume_backups (id, container_id, project, container_name, volume, kind, target, object_key, status, created_by)
				VALUES ($1, $2, $3, $4, $5, coalesce(nullif($9, ''), 'volume'), $6, $7, 'running', $8)
				RETURNING `+backupColumns, b.ID, nullUUID(b.ContainerID), b.Project, b.Container, b.Volume, b.Target, b.ObjectKey, actor, b.Kind)
			if err != nil {
				return mapErr(err, "backup")
			}
			b, err = pgx.CollectExactlyOneRow(rows, scanBackup)
			if err != nil {
				return mapErr(err, "backup")
			}
			out = append(out, b)
			if _, err := appendEvent(ctx, tx, "backup.started", ref{b.ContainerID, b.Project, b.Container}, actor,
				map[string]any{"id": b.ID, "volume": b.Volume, "target": b.Target}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// FinishBackup records the end of a running backup: done with res's
// checksum and sizes when errText is empty, failed with errText otherwise;
// with a backup.done or backup.failed event. A backup no longer running
// (marked failed by a restart meanwhile) is left as it is.
func (s *Store) FinishBackup(ctx context.Context, id, sha string, tarBytes, storedBytes int64, errText string) (domain.Backup, error) {
	var b domain.Backup
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		status := domain.BackupDone
		if errText != "" {
			status, sha, tarBytes, storedBytes = domain.BackupFailed, "", 0, 0
		}
		rows, err := tx.Query(ctx, `
			UPDATE volume_backups SET status = $2, error = $3, sha256 = $4, tar_bytes = $5, stored_bytes = $6, finished_at = now()
			WHERE id = $1 AND status = 'running'
			RETURNING `+backupColumns, id, status, errText, sha, tarBytes, storedBytes)
		if err != nil {
			return mapErr(err, "backup "+id)
		}
		b, err = pgx.CollectExactlyOneRow(rows, scanBackup)
		if err != nil {
			return mapErr(err, "running backup "+id)
		}
		data := map[string]any{"id": b.ID, "volume": b.Volume, "target": b.Target}
		kind := "backup.done"
		if status == domain.BackupDone {
			data["bytes"], data["stored_bytes"], data["sha256"] = tarBytes, storedBytes, sha
		} else {
			kind, data["error"] = "backup.failed", errText
		}
		_, err = appendEvent(ctx, tx, kind, ref{b.ContainerID, b.Project, b.Container}, domain.System.String(), data)
		return err
	})
	return b, err
}

// FailRunningBackups marks every running backup failed with why, each with
// a backup.failed event: at start, before any backup runs, those are the
// ones a stopped or killed moor left. It returns how many there were.
func (s *Store) FailRunningBackups(ctx context.Context, why string) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			UPDATE volume_backups SET status = 'failed', error = $1, finished_at = now()
			WHERE status = 'running' RETURNING `+backupColumns, why)
		if err != nil {
			return mapErr(err, "running backups")
		}
		bs, err := pgx.CollectRows(rows, scanBackup)
		if err != nil {
			return mapErr(err, "running backups")
		}
		n = len(bs)
		for _, b := range bs {
			if _, err := appendEvent(ctx, tx, "backup.failed", ref{b.ContainerID, b.Project, b.Container}, domain.System.String(),
				map[string]any{"id": b.ID, "volume": b.Volume, "target": b.Target, "error": why}); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// Backups lists the backups of the container named cr (those of earlier
// containers of the same name too: their archives restore there as well),
// newest first.
func (s *Store) Backups(ctx context.Context, cr domain.ContainerRef) ([]domain.Backup, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+backupColumns+` FROM volume_backups
		WHERE project = $1 AND container_name = $2 ORDER BY created_at DESC, id`, cr.Project, cr.Name)
	if err != nil {
		return nil, mapErr(err, "backups")
	}
	bs, err := pgx.CollectRows(rows, scanBackup)
	return bs, mapErr(err, "backups")
}

// Backup returns one backup of the container named cr.
func (s *Store) Backup(ctx context.Context, cr domain.ContainerRef, id string) (domain.Backup, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+backupColumns+` FROM volume_backups
		WHERE project = $1 AND container_name = $2 AND id::text = $3`, cr.Project, cr.Name, id)
	if err != nil {
		return domain.Backup{}, mapErr(err, "backup "+id)
	}
	b, err := pgx.CollectExactlyOneRow(rows, scanBackup)
	return b, mapErr(err, fmt.Sprintf("backup %q of %s", id, cr.Name))
}

const restoreColumns = `r.id::text, r.backup_id::text, r.container_id::text, b.project, b.container_name, b.volume,
	r.status, r.error, r.created_by, r.created_at, r.finished_at`

func scanRestore(row pgx.CollectableRow) (domain.Restore, error) {
	var r domain.Restore
	err := row.Scan(&r.ID, &r.BackupID, &r.ContainerID, &r.Project, &r.Container, &r.Volume,
		&r.Status, &r.Error, &r.CreatedBy, &r.CreatedAt, &r.FinishedAt)
	return r, err
}

// StartRestore records a restore of backup r.BackupID into container
// r.ContainerID (r.ID set) as running, with a backup.restoring event; one
// already running for the container is a conflict.
func (s *Store) StartRestore(ctx context.Context, r domain.Restore) (domain.Restore, error) {
	actor := domain.ActorFrom(ctx).String()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO volume_restores (id, backup_id, container_id, status, created_by)
			VALUES ($1, $2, $3, 'running', $4)`, r.ID, r.BackupID, r.ContainerID, actor); err != nil {
			return mapErr(err, "a restore of container "+r.Container+" running")
		}
		rows, err := tx.Query(ctx, `SELECT `+restoreColumns+` FROM volume_restores r JOIN volume_backups b ON b.id = r.backup_id
			WHERE r.id = $1`, r.ID)
		if err != nil {
			return mapErr(err, "restore")
		}
		if r, err = pgx.CollectExactlyOneRow(rows, scanRestore); err != nil {
			return mapErr(err, "restore")
		}
		_, err = appendEvent(ctx, tx, "backup.restoring", ref{r.ContainerID, r.Project, r.Container}, actor,
			map[string]any{"id": r.BackupID, "restore": r.ID, "volume": r.Volume})
		return err
	})
	return r, err
}

// FinishRestore records the end of a running restore: done when errText is
// empty (event backup.restored), failed otherwise (backup.restore_failed).
func (s *Store) FinishRestore(ctx context.Context, id, errText string) (domain.Restore, error) {
	var r domain.Restore
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		status, kind := domain.BackupDone, "backup.restored"
		if errText != "" {
			status, kind = domain.BackupFailed, "backup.restore_failed"
		}
		tag, err := tx.Exec(ctx, `UPDATE volume_restores SET status = $2, error = $3, finished_at = now()
			WHERE id = $1 AND status = 'running'`, id, status, errText)
		if err != nil {
			return mapErr(err, "restore "+id)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("running restore %s: %w", id, domain.ErrNotFound)
		}
		rows, err := tx.Query(ctx, `SELECT `+restoreColumns+` FROM volume_restores r JOIN volume_backups b ON b.id = r.backup_id
			WHERE r.id = $1`, id)
		if err != nil {
			return mapErr(err, "restore")
		}
		if r, err = pgx.CollectExactlyOneRow(rows, scanRestore); err != nil {
			return mapErr(err, "restore")
		}
		data := map[string]any{"id": r.BackupID, "restore": r.ID, "volume": r.Volume}
		if errText != "" {
			data["error"] = errText
		}
		_, err = appendEvent(ctx, tx, kind, ref{r.ContainerID, r.Project, r.Container}, domain.System.String(), data)
		return err
	})
	return r, err
}

// RunningRestores lists the restores recorded running: at start, those a
// stopped or killed moor left half-way.
func (s *Store) RunningRestores(ctx context.Context) ([]domain.Restore, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+restoreColumns+` FROM volume_restores r JOIN volume_backups b ON b.id = r.backup_id
		WHERE r.status = 'running' ORDER BY r.created_at`)
	if err != nil {
		return nil, mapErr(err, "running restores")
	}
	rs, err := pgx.CollectRows(rows, scanRestore)
	return rs, mapErr(err, "running restores")
}
