package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
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
	g := s.signInGuard()
	now := s.now()
	peer := clientAddr(r, g.lim.TrustedProxies)
	client := addrKey(peer, r.RemoteAddr)
	// Every attempt counts against the client's address, whatever the user
	// name: rotating names cannot buy more password checks.
	if wait := g.take(client, now); wait > 0 {
		return tooManyAttempts(w, wait, "too many sign-in attempts from this address; try again later")
	}
	// Failures back off per user name (no lock-out: the wait runs out).
	// Names that cannot exist share one entry, so junk names cost no memory.
	user := req.Username
	if !domain.IsLabel(user) {
		user = "\x00"
	}
	if wait := g.admit(user, now); wait > 0 {
		return tooManyAttempts(w, wait, "too many failed sign-ins for this user name; try again later")
	}
	checked := false
	defer func() {
		if !checked {
			g.release(user)
		}
	}()
	var hash string
	var actor domain.Actor
	if domain.IsLabel(req.Username) && len(req.Password) <= 72 {
		var err error
		actor, hash, err = s.Sessions.UserByName(r.Context(), req.Username)
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			return err
		}
	}
	// A bounded number of password hashes at once: a flood waits briefly,
	// then is turned away, and never takes every core from the API.
	release, ok := g.hashSlot(r.Context())
	if !ok {
		return tooManyAttempts(w, time.Second, "sign-in is busy; try again shortly")
	}
	check := s.CheckPassword
	if check == nil {
		check = auth.CheckPassword
	}
	good := check(hash, req.Password)
	release()
	checked = true
	g.done(user, good, s.now())
	if !good {
		s.Logger.Warn("sign-in refused", "username", req.Username, "client", peer.String())
		return &requestError{http.StatusUnauthorized, "unauthorized", "wrong user name or password"}
	}
	if err := s.startSession(w, r, actor); err != nil {
		return err
	}
	s.Logger.Info("signed in", "user", actor.Name, "role", actor.Role)
	writeJSON(w, http.StatusOK, map[string]any{"user": actor})
	return nil
}

// startSession signs actor in: a session stored as its hash, the token in
// the cookie.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, actor domain.Actor) error {
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
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.isHTTPS(r)})
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
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.isHTTPS(r)})
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

// isHTTPS reports whether the client reached moor over HTTPS: directly, or
// through a trusted proxy that says so (anyone else's X-Forwarded-Proto is
// not believed).
func (s *Server) isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	peer := parseHop(r.RemoteAddr)
	return peer.IsValid() && inPrefixes(peer, s.SignIn.TrustedProxies) && r.Header.Get("X-Forwarded-Proto") == "https"
}

func tooManyAttempts(w http.ResponseWriter, wait time.Duration, msg string) error {
	w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	return &requestError{http.StatusTooManyRequests, "too_many_attempts", msg}
}

// signInGuard is the sign-in throttles' state, made on first use.
func (s *Server) signInGuard() *signInGuard {
	s.signInOnce.Do(func() { s.signIn = newSignInGuard(s.SignIn) })
	return s.signIn
}

func (s *Server) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}
