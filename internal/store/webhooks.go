package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

const webhookColumns = `id::text, name, url, events, cursor, failures, last_error, last_delivered_at, created_at, created_by, secret`

func scanWebhook(r pgx.CollectableRow) (domain.Webhook, error) {
	var w domain.Webhook
	err := r.Scan(&w.ID, &w.Name, &w.URL, &w.Events, &w.Cursor, &w.Failures, &w.LastError, &w.LastDeliveredAt,
		&w.CreatedAt, &w.CreatedBy, &w.SealedSecret)
	return w, err
}

// CreateWebhook stores w (ID and SealedSecret set), starting after the
// newest event: a webhook gets what happens from its creation on.
func (s *Store) CreateWebhook(ctx context.Context, w domain.Webhook) (domain.Webhook, error) {
	actor := domain.ActorFrom(ctx).String()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Under the events lock, so no event commits between the cursor
		// read and this insert.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, eventLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			INSERT INTO webhooks (id, name, url, events, secret, cursor, created_by)
			VALUES ($1, $2, $3, $4, $5, (SELECT coalesce(max(seq), 0) FROM events), $6)
			RETURNING `+webhookColumns, w.ID, w.Name, w.URL, w.Events, w.SealedSecret, actor)
		if err != nil {
			return mapErr(err, fmt.Sprintf("webhook %q", w.Name))
		}
		w, err = pgx.CollectExactlyOneRow(rows, scanWebhook)
		if err != nil {
			return mapErr(err, fmt.Sprintf("webhook %q", w.Name))
		}
		_, err = appendEvent(ctx, tx, "webhook.created", ref{}, actor, map[string]any{"name": w.Name, "events": w.Events})
		return err
	})
	return w, err
}

// Webhooks lists every webhook by name, with its sealed secret.
func (s *Store) Webhooks(ctx context.Context) ([]domain.Webhook, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY name`)
	if err != nil {
		return nil, mapErr(err, "webhooks")
	}
	ws, err := pgx.CollectRows(rows, scanWebhook)
	return ws, mapErr(err, "webhooks")
}

// DeleteWebhook removes a webhook by name.
func (s *Store) DeleteWebhook(ctx context.Context, name string) error {
	actor := domain.ActorFrom(ctx).String()
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE name = $1`, name)
		if err != nil {
			return mapErr(err, "webhook")
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook %q: %w", name, domain.ErrNotFound)
		}
		_, err = appendEvent(ctx, tx, "webhook.deleted", ref{}, actor, map[string]any{"name": name})
		return err
	})
}

// WebhookProgress records a delivery round: the cursor moves forward only
// (a process that lost its lock cannot move it back); delivered says an
// event was accepted; errText empty means the round ended well.
func (s *Store) WebhookProgress(ctx context.Context, id string, cursor int64, delivered bool, errText string) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE webhooks SET
			cursor = greatest(cursor, $2),
			last_delivered_at = CASE WHEN $3 THEN now() ELSE last_delivered_at END,
			failures = CASE WHEN $4 = '' THEN 0 ELSE failures + 1 END,
			last_error = $4
		WHERE id = $1`, id, cursor, delivered, errText)
	return mapErr(err, "webhook")
}
