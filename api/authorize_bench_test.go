package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/moorhq/moor/internal/auth"
	"github.com/moorhq/moor/internal/domain"
)

// The per-request cost of authorization (issue 11: under 50 µs p99), for
// an actor with 1, 10 and 100 roles per project. bench/projects.sh runs
// these with `go test ./api -run '^$' -bench Authorization`; the
// authenticating query (ActorByKeyHash, memberships read as one JSON
// object) is timed against PostgreSQL by bench/projects.
//
//   - check: authorize for a container route of the actor's project
//     (the project's role looked up in the actor's map);
//   - filter: authorize plus readableEvents for GET /api/v1/events, the
//     route that narrows an answer to the caller's projects (a sorted list
//     of them, built per request);
//   - wrap: the whole of wrap around a handler that does nothing:
//     authenticate (the key's hash; the key table is in memory, so no
//     database), authorize, the caller's rate limit and the actor put in
//     the request's context.
//
// Besides ns/op, each reports p50-ns and p99-ns, from every call timed on
// its own (the clock's cost, tens of ns, included).
func BenchmarkAuthorization(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		a := domain.Actor{Kind: "user", ID: "u1", Name: "ann", Projects: map[string]domain.Role{}}
		for i := range n {
			a.Projects[fmt.Sprintf("p%03d", i)] = domain.RoleViewer
		}
		project := fmt.Sprintf("p%03d", n/2) // one of its projects
		list := routeFor(b, "GET", "/api/v1/projects/{project}/containers")
		events := routeFor(b, "GET", "/api/v1/events")
		req := mux.SetURLVars(httptest.NewRequest("GET", "/api/v1/projects/"+project+"/containers", nil),
			map[string]string{"project": project})
		evReq := httptest.NewRequest("GET", "/api/v1/events", nil)

		b.Run(fmt.Sprintf("check/memberships=%d", n), func(b *testing.B) {
			timeEach(b, func() {
				if err := authorize(a, list, req); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run(fmt.Sprintf("filter/memberships=%d", n), func(b *testing.B) {
			timeEach(b, func() {
				if err := authorize(a, events, evReq); err != nil {
					b.Fatal(err)
				}
				var q domain.EventQuery
				if err := readableEvents(a, &q); err != nil || len(q.Projects) != n {
					b.Fatal(err, len(q.Projects))
				}
			})
		})
		b.Run(fmt.Sprintf("wrap/memberships=%d", n), func(b *testing.B) {
			key, hash, err := auth.NewKey()
			if err != nil {
				b.Fatal(err)
			}
			keyed := a
			keyed.Kind, keyed.Name = "apikey", "bench"
			s := &Server{Keys: keyTable{string(hash): keyed}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Limits: Limits{Rate: 1e12, Burst: 1e12}}
			rt := list
			rt.handler = func(_ *Server, w http.ResponseWriter, r *http.Request) error {
				if domain.ActorFrom(r.Context()).Name != "bench" {
					b.Fatal("no actor")
				}
				return nil
			}
			h := s.wrap(rt)
			r := req.Clone(req.Context())
			r.Header.Set("Authorization", "Bearer "+key)
			w := discardWriter{}
			timeEach(b, func() { h.ServeHTTP(w, r) })
		})
	}
}

// routeFor is the served route with this method and path.
func routeFor(b *testing.B, method, path string) route {
	i := slices.IndexFunc(routes, func(rt route) bool { return rt.method == method && rt.path == path })
	if i < 0 {
		b.Fatalf("no route %s %s", method, path)
	}
	return routes[i]
}

// timeEach runs f b.N times, timing each call, and reports the median and
// the 99th percentile (of the last million calls at most).
func timeEach(b *testing.B, f func()) {
	const keep = 1 << 20
	d := make([]time.Duration, min(b.N, keep))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		f()
		d[i%keep] = time.Since(t0)
	}
	b.StopTimer()
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(d[min(len(d)-1, len(d)*99/100)].Nanoseconds()), "p99-ns")
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}
