package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moorhq/moor/internal/domain"
)

// The websocket subprotocol, and the prefix of the one that carries an API
// key from a browser, which cannot set an Authorization header on a
// websocket: new WebSocket(url, ["moor.v1", "bearer." + key]).
const (
	wsProtocol     = "moor.v1"
	wsBearerPrefix = "bearer."
)

// wsClosePruned is the close code (the private range, after HTTP's 410 Gone)
// of a stream asked to resume from events that retention has deleted: the
// client has missed events for good and must reload the state.
const wsClosePruned = 4410

const (
	wsWriteTimeout = 10 * time.Second
	wsPingEvery    = 30 * time.Second
	wsPongWait     = 2 * wsPingEvery
)

// events streams committed events over a websocket, one JSON text message
// per event, shaped as in GET /api/v1/events. ?after=N resumes after event
// N (0: from the oldest kept); without it the stream starts with the next
// event. When events after N were pruned, the stream closes at once with
// code 4410 and a reason naming them, rather than skip them silently.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		return &requestError{http.StatusUpgradeRequired, "upgrade_required",
			"this endpoint speaks websocket (GET with Upgrade: websocket); GET /api/v1/events pages the same events over plain HTTP"}
	}
	if s.Hub == nil {
		return &requestError{http.StatusServiceUnavailable, "unavailable", "the event stream is not running"}
	}
	cursor := int64(-1)
	if r.URL.Query().Has("after") {
		after, err := intParam(r, "after", 0, 0, 1<<62)
		if err != nil {
			return err
		}
		cursor = int64(after)
	}
	if cursor < 0 {
		last, err := s.Hub.latest(r.Context())
		if err != nil {
			return err
		}
		cursor = last
	}
	upgrader := websocket.Upgrader{
		ReadBufferSize: 512,
		// Events go to the connection under gorilla (wsConn); its write
		// buffer would serve only control frames, which it writes without
		// one: from a pool, so an idle client holds none.
		WriteBufferPool: &s.Hub.writeBufs,
		Subprotocols:    []string{wsProtocol},
		// gorilla's default origin check stays: a page of another origin
		// may not open it (what a cookie would otherwise allow).
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeError(w, r, s.Logger, &requestError{status, "bad_upgrade", "websocket handshake: " + reason.Error()})
		},
	}
	closeSocket, ok := s.openSocket(domain.ActorFrom(r.Context()))
	if !ok {
		return tooMany(w, 10*time.Second, "too many websockets open with this key: "+
			strconv.Itoa(s.limitsOrDefault().Websockets)+" at most; close one first")
	}
	defer closeSocket()
	// Counted from before the handshake, so a client never sees itself
	// missing from moor_websocket_clients.
	s.Hub.clients.Add(1)
	defer s.Hub.clients.Add(-1)
	hj := &wsHijacker{ResponseWriter: w, timeout: wsWriteTimeout}
	conn, err := upgrader.Upgrade(hj, r, nil)
	if err != nil {
		return nil // the upgrader has answered
	}
	defer conn.Close()
	s.streamEvents(r.Context(), conn, hj.conn, cursor)
	return nil
}

// streamEvents writes the events after cursor to conn (gorilla's) as they
// come; the events themselves go to wc, the connection under it.
func (s *Server) streamEvents(ctx context.Context, conn *websocket.Conn, wc *wsConn, cursor int64) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Clients only answer pings and close; reading also notices a peer gone.
	conn.SetReadLimit(512)
	conn.SetReadDeadline(time.Now().Add(wsPongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
	go func() {
		defer cancel()
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	closeWith := func(code int, text string) {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	}
	ping := time.NewTicker(wsPingEvery)
	defer ping.Stop()
	// A caller without an instance-wide role sees its projects' events only.
	var visible func(domain.Event) bool
	if a := domain.ActorFrom(ctx); !a.ReadsAll() {
		visible = func(e domain.Event) bool { return e.Project != "" && a.CanRead(e.Project) }
	}
	for {
		evs, wire, changed, err := s.Hub.next(ctx, cursor, hubPage)
		if err != nil {
			// (Looked into only on an error: errors.As's target escapes,
			// one allocation per wake of every client otherwise.)
			var pruned *errPruned
			if errors.As(err, &pruned) {
				closeWith(wsClosePruned, pruned.Error())
				return
			}
			if ctx.Err() == nil {
				s.Logger.Warn("event stream: cannot read events", "err", err)
				closeWith(websocket.CloseTryAgainLater, "events unavailable, resume with ?after="+strconv.FormatInt(cursor, 10))
			}
			return
		}
		fromTable := wire == nil
		if fromTable {
			wire = s.frameEvents(evs)
		}
		if len(evs) > 0 {
			cursor = evs[len(evs)-1].Seq
		}
		if visible != nil {
			evs, wire = only(visible, evs, wire)
		}
		if !s.writeEvents(wc, evs, wire) {
			return
		}
		if changed == nil {
			// Catching up from the table (not the ring): at the replay
			// rate, so that many clients replaying at once cannot crowd
			// out the API.
			if len(evs) > 0 && fromTable {
				s.pace(ctx, len(evs))
			}
			continue
		}
		select {
		case <-changed:
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteTimeout)); err != nil {
				return
			}
		case <-s.Hub.stopped:
			closeWith(websocket.CloseGoingAway, "server shutting down, resume with ?after="+strconv.FormatInt(cursor, 10))
			return
		case <-ctx.Done():
			return
		}
	}
}

// writeEvents writes evs, framed in wire, to wc; false when the client
// cannot take them. Frames that follow each other in memory (as a burst's
// do in the hub's arena) go out with one write, up to wsBatchBytes: a
// client woken after a few changes, as most are in a burst, takes them all
// at once.
func (s *Server) writeEvents(wc *wsConn, evs []domain.Event, wire []wireRef) bool {
	for i := 0; i < len(wire); {
		w := wire[i]
		if w.arena == nil {
			// The hub could not encode it (and said so): the client would
			// miss it, so it is cut off, to resume or reload.
			s.Logger.Warn("event stream: an event cannot be sent, closing", "seq", evs[i].Seq)
			return false
		}
		end, j := w.end, i+1
		for j < len(wire) && wire[j-1].follows(wire[j]) && wire[j].end-w.off <= wsBatchBytes {
			end, j = wire[j].end, j+1
		}
		if wc.writeFrames(w.arena[w.off:end]) != nil {
			return false
		}
		i = j
	}
	return true
}

// frameEvents frames events read from the table for this client alone, in
// arenas of wsBatchBytes (a write each).
func (s *Server) frameEvents(evs []domain.Event) []wireRef {
	f := framer{size: wsBatchBytes}
	wire := make([]wireRef, len(evs))
	for i, ev := range evs {
		var err error
		if wire[i], err = f.frame(ev); err != nil {
			s.Logger.Warn("event stream: cannot encode event", "seq", ev.Seq, "err", err)
		}
	}
	return wire
}

// wsKey is the API key a browser sent as a websocket subprotocol.
func wsKey(r *http.Request) (string, bool) {
	if !websocket.IsWebSocketUpgrade(r) {
		return "", false
	}
	for _, p := range websocket.Subprotocols(r) {
		if key, ok := strings.CutPrefix(p, wsBearerPrefix); ok {
			return key, true
		}
	}
	return "", false
}

// only keeps the events (and their frames) keep holds for; new slices, the
// hub's are shared.
func only(keep func(domain.Event) bool, evs []domain.Event, wire []wireRef) ([]domain.Event, []wireRef) {
	var outE []domain.Event
	var outW []wireRef
	for i, e := range evs {
		if keep(e) {
			outE, outW = append(outE, e), append(outW, wire[i])
		}
	}
	return outE, outW
}
