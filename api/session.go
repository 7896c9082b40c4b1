package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/moorhq/moor/internal/auth"
	"github.com/moorhq/moor/internal/domain"
)

// Sessions signs users of the web UI in and out.
type Sessions interface {
	UserByName(ctx context.Context, username string) (domain.Actor, string, error)
	CreateSession(ctx context.Context, hash []byte, userID string, expires time.Time) error
	ActorBySessionHash(ctx context.Context, hash []byte) (domain.Actor, error)
	DeleteSession(ctx context.Context, hash []byte) error
}

// SessionCookie carries the web UI's session: HttpOnly, so scripts never
// see it; SameSite=Strict, so other sites' pages do not send it.
const SessionCookie = "moor_session"

// DefaultSessionTTL is how long a sign-in lasts.
const DefaultSessionTTL = 12 * time.Hour

// Failed sign-ins allowed per client address and user name, and window,
// before 429.
const (
	loginFailures = 10
	loginWindow   = 5 * time.Minute
)

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	if s.Sessions == nil {
		return &requestError{http.StatusNotFound, "not_found", "sign-in is off"}
	}
	if err := sameOrigin(r); err != nil {
		return err
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	// Counted per address and user name: behind a proxy every client has
	// the proxy's address, and one guesser must not lock out all users.
	client := clientIP(r) + " " + req.Username
	if wait := s.logins.blocked(client, time.Now()); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return &requestError{http.StatusTooManyRequests, "too_many_attempts", "too many failed sign-ins from this address; try again later"}
	}
	var hash string
	var actor domain.Actor
	if domain.IsLabel(req.Username) && len(req.Password) <= 72 {
		var err error
		actor, hash, err = s.Sessions.UserByName(r.Context(), req.Username)
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			return err
		}
	}
	if !auth.CheckPassword(hash, req.Password) {
		s.logins.failed(client, time.Now())
		s.Logger.Warn("sign-in refused", "username", req.Username, "client", clientIP(r))
		return &requestError{http.StatusUnauthorized, "unauthorized", "wrong user name or password"}
	}
	token, tokenHash, err := auth.NewSessionToken()
	if err != nil {
		return err
	}
	ttl := s.SessionTTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	if err := s.Sessions.CreateSession(r.Context(), tokenHash, actor.ID, time.Now().Add(ttl)); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", MaxAge: int(ttl.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isHTTPS(r)})
	s.Logger.Info("signed in", "user", actor.Name, "role", actor.Role)
	writeJSON(w, http.StatusOK, map[string]any{"user": actor})
	return nil
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"user": domain.ActorFrom(r.Context())})
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(SessionCookie); err == nil && auth.WellFormedSession(c.Value) && s.Sessions != nil {
		if err := s.Sessions.DeleteSession(r.Context(), auth.HashKey(c.Value)); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isHTTPS(r)})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// sessionActor is the user of the request's session cookie; ok is false
// when there is none.
func (s *Server) sessionActor(r *http.Request) (domain.Actor, bool, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || s.Sessions == nil {
		return domain.Actor{}, false, nil
	}
	if !auth.WellFormedSession(c.Value) {
		return domain.Actor{}, true, &requestError{http.StatusUnauthorized, "unauthorized", "invalid session: sign in again"}
	}
	a, err := s.Sessions.ActorBySessionHash(r.Context(), auth.HashKey(c.Value))
	if errors.Is(err, domain.ErrUnauthorized) {
		return a, true, &requestError{http.StatusUnauthorized, "unauthorized", "session expired or ended: sign in again"}
	}
	return a, true, err
}

// crossOrigin refuses changes a browser sends from another site's page
// (Sec-Fetch-Site, else Origin against Host). SameSite=Strict already keeps
// the cookie off such requests in browsers that honour it; this holds for
// the others, and for sign-in, which has no cookie yet.
var crossOrigin http.CrossOriginProtection

func sameOrigin(r *http.Request) error {
	if err := crossOrigin.Check(r); err != nil {
		return &requestError{http.StatusForbidden, "cross_origin", "a change sent from another site's page is refused"}
	}
	return nil
}

func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginLimiter counts failed sign-ins per key in fixed windows.
type loginLimiter struct {
	mu   sync.Mutex
	seen map[string]*loginWindowCount
}

type loginWindowCount struct {
	start time.Time
	n     int
}

func (l *loginLimiter) blocked(client string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.seen[client]
	if c == nil || now.Sub(c.start) >= loginWindow || c.n < loginFailures {
		return 0
	}
	return c.start.Add(loginWindow).Sub(now)
}

func (l *loginLimiter) failed(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]*loginWindowCount{}
	}
	if len(l.seen) > 10000 { // forget stale windows rather than grow
		for k, c := range l.seen {
			if now.Sub(c.start) >= loginWindow {
				delete(l.seen, k)
			}
		}
	}
	c := l.seen[client]
	if c == nil || now.Sub(c.start) >= loginWindow {
		c = &loginWindowCount{start: now}
		l.seen[client] = c
	}
	c.n++
}
