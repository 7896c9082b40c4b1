// Package webhook sends moor's events to HTTP receivers such as n8n: each
// event a webhook asks for is POSTed as JSON, signed with HMAC-SHA256, in
// order, retried with backoff until the receiver answers 2xx, and never
// lost: every webhook's cursor lives in PostgreSQL and moves only after a
// 2xx, so a crash resends at most the event in flight.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/egress"
)

// Store is where webhooks and events live.
type Store interface {
	CreateWebhook(ctx context.Context, w domain.Webhook) (domain.Webhook, error)
	Webhooks(ctx context.Context) ([]domain.Webhook, error)
	DeleteWebhook(ctx context.Context, name string) error
	WebhookProgress(ctx context.Context, id string, cursor int64, delivered bool, errText string) error
}

// Events reads the event stream.
type Events interface {
	EventsSince(ctx context.Context, after int64, limit int) ([]domain.Event, error)
}

// Sealer keeps the signing secrets encrypted at rest.
type Sealer interface {
	Seal(plaintext, additional []byte) ([]byte, error)
	Open(ciphertext, additional []byte) ([]byte, error)
}

// Locker makes one moor process at a time deliver a webhook.
type Locker interface {
	TryLock(ctx context.Context, id string) (context.Context, bool, error)
	Unlock(ctx context.Context, id string)
}

// SecretPrefix marks signing secrets.
const SecretPrefix = "whsec_"

const (
	page        = 100
	maxBackoff  = 5 * time.Minute
	rescan      = 2 * time.Second
	sendTimeout = 10 * time.Second
)

// Destinations is the policy of where webhooks may go (internal/egress):
// checked when a webhook is created, and on the resolved address of every
// connection.
type Destinations interface {
	CheckURLHost(host string) error
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Service manages webhooks and delivers their events.
type Service struct {
	dest    Destinations
	store   Store
	events  Events
	box     Sealer
	locker  Locker
	client  *http.Client
	logger  *slog.Logger
	agent   string
	wake    chan struct{}
	mu      sync.Mutex
	running map[string]bool      // webhook id -> a round is under way
	retryAt map[string]time.Time // webhook id -> no round before
}

// New returns a service; Run delivers.
func New(store Store, events Events, box Sealer, locker Locker, dest Destinations, version string, logger *slog.Logger) *Service {
	return &Service{
		store: store, events: events, box: box, locker: locker, logger: logger, agent: "moor-webhook/" + version, dest: dest,
		client: &http.Client{
			Timeout: sendTimeout,
			// No proxy from the environment: the policy is checked on the
			// address moor itself connects to.
			Transport: &http.Transport{DialContext: dest.DialContext, ForceAttemptHTTP2: true,
				MaxIdleConns: 16, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second},
			// A redirect is not followed: the receiver is what an admin
			// named, nothing it points elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		wake: make(chan struct{}, 1), running: map[string]bool{}, retryAt: map[string]time.Time{},
	}
}

// Create adds a webhook and returns it with its signing secret, which is
// shown this once.
func (s *Service) Create(ctx context.Context, name, url string, events []string) (domain.Webhook, string, error) {
	w := domain.Webhook{ID: uuid.NewString(), Name: name, URL: url, Events: events}
	if err := w.Validate(); err != nil {
		return domain.Webhook{}, "", err
	}
	if u, err := neturl.Parse(url); err == nil {
		if err := s.dest.CheckURLHost(u.Hostname()); err != nil {
			return domain.Webhook{}, "", domain.Invalid("url", "%v; an admin can allow it with MOOR_WEBHOOK_ALLOWED_HOSTS", err)
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return domain.Webhook{}, "", err
	}
	secret := SecretPrefix + hex.EncodeToString(raw)
	sealed, err := s.box.Seal([]byte(secret), []byte(w.ID))
	if err != nil {
		return domain.Webhook{}, "", err
	}
	w.SealedSecret = sealed
	w, err = s.store.CreateWebhook(ctx, w)
	if err != nil {
		return domain.Webhook{}, "", err
	}
	s.logger.Info("webhook created", "name", w.Name, "events", w.Events)
	return w, secret, nil
}

// List returns every webhook (without secrets).
func (s *Service) List(ctx context.Context) ([]domain.Webhook, error) {
	ws, err := s.store.Webhooks(ctx)
	if ws == nil {
		ws = []domain.Webhook{}
	}
	return ws, err
}

// Get returns one webhook by name.
func (s *Service) Get(ctx context.Context, name string) (domain.Webhook, error) {
	ws, err := s.store.Webhooks(ctx)
	if err != nil {
		return domain.Webhook{}, err
	}
	for _, w := range ws {
		if w.Name == name {
			return w, nil
		}
	}
	return domain.Webhook{}, fmt.Errorf("webhook %q: %w", name, domain.ErrNotFound)
}

// Delete removes a webhook.
func (s *Service) Delete(ctx context.Context, name string) error {
	return s.store.DeleteWebhook(ctx, name)
}

// Notify says an event was committed. It never blocks.
func (s *Service) Notify(int64) {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: on every event, and every couple of seconds
// for retries and for events whose notification was missed.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(rescan)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
		ws, err := s.store.Webhooks(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("webhooks: cannot list, retrying", "err", err)
			}
			continue
		}
		now := time.Now()
		s.mu.Lock()
		for _, w := range ws {
			if s.running[w.ID] || now.Before(s.retryAt[w.ID]) {
				continue
			}
			s.running[w.ID] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.round(ctx, w)
			}()
		}
		s.mu.Unlock()
	}
}

// round delivers w's pending events in order until none is left or one
// fails, under w's lock so only one moor process sends them.
func (s *Service) round(ctx context.Context, w domain.Webhook) {
	var failed error
	defer func() {
		s.mu.Lock()
		delete(s.running, w.ID)
		if failed != nil {
			s.retryAt[w.ID] = time.Now().Add(backoff(w.Failures + 1))
		} else {
			delete(s.retryAt, w.ID)
		}
		s.mu.Unlock()
	}()
	lockID := "webhook:" + w.ID
	held, ok, err := s.locker.TryLock(ctx, lockID)
	if err != nil || !ok {
		return
	}
	defer s.locker.Unlock(context.WithoutCancel(ctx), lockID)
	ctx, cancel := context.WithCancel(ctx)
	defer context.AfterFunc(held, cancel)()
	defer cancel()

	secret, err := s.box.Open(w.SealedSecret, []byte(w.ID))
	if err != nil {
		s.logger.Error("webhook secret cannot be opened (MOOR_SECRET_KEY changed?)", "webhook", w.Name, "err", err)
		failed = err
		return
	}
	cursor, dirty := w.Cursor, false
	for ctx.Err() == nil {
		evs, err := s.events.EventsSince(ctx, cursor, page)
		if err != nil || len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if !w.Matches(ev.Kind) {
				cursor, dirty = ev.Seq, true
				continue
			}
			if err := s.send(ctx, w, secret, ev); err != nil {
				failed = err
				break
			}
			cursor, dirty = ev.Seq, false
			if err := s.store.WebhookProgress(ctx, w.ID, cursor, true, ""); err != nil {
				failed = err
				break
			}
			w.Failures = 0
		}
		if failed != nil {
			break
		}
	}
	switch {
	case failed != nil:
		s.logger.Warn("webhook delivery failed; will retry", "webhook", w.Name, "seq", cursor+1, "err", failed,
			"retry_in", backoff(w.Failures+1))
		s.store.WebhookProgress(context.WithoutCancel(ctx), w.ID, cursor, false, publicError(failed))
	case dirty:
		s.store.WebhookProgress(context.WithoutCancel(ctx), w.ID, cursor, false, "")
	}
}

// send POSTs one event. The signature covers the timestamp and the body:
// X-Moor-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.
func (s *Service) send(ctx context.Context, w domain.Webhook, secret []byte, ev domain.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.agent)
	req.Header.Set("X-Moor-Event", ev.Kind)
	req.Header.Set("X-Moor-Delivery", w.ID+":"+strconv.FormatInt(ev.Seq, 10))
	req.Header.Set("X-Moor-Signature", "t="+ts+",v1="+Sign(secret, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) {
			return fmt.Errorf("POST: %w", uerr.Unwrap())
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &statusError{resp.Status}
	}
	return nil
}

// publicError is what is stored (and shown) of a failed delivery: the
// receiver's status as it is, but for a connection only whether it was
// refused by the policy, timed out or failed, so that the stored text
// cannot map which ports answer where (the log keeps the details).
func publicError(err error) string {
	var status *statusError
	var netErr net.Error
	switch {
	case errors.As(err, &status):
		return status.Error()
	case errors.Is(err, egress.ErrRefused):
		return "destination not allowed (MOOR_WEBHOOK_ALLOWED_HOSTS)"
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	return "connection failed"
}

// statusError is a receiver's answer other than 2xx.
type statusError struct{ status string }

func (e *statusError) Error() string { return "receiver answered " + e.status }

// Sign is the hex HMAC-SHA256 of "<ts>.<body>" under secret, as receivers
// recompute it.
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// backoff after n failures in a row: 1s, 2s, 4s, ... up to maxBackoff.
func backoff(n int) time.Duration {
	if n > 20 {
		return maxBackoff
	}
	return min(time.Second<<max(n-1, 0), maxBackoff)
}
