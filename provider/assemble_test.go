package provider

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

// TestAssemblerMatchesBuild: the incremental assembler serves exactly the
// bytes of Render(Build(...)) for every golden case, and stays equal to a
// full build through a long random sequence of changes.
func TestAssemblerMatchesBuild(t *testing.T) {
	full := func(cs []domain.Container, o Options) []byte {
		cfg, err := Build(cs, o)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Render(cfg)
		return b
	}
	for _, tc := range buildCases {
		a := newAssembler(tc.opts)
		cs := withIDs(tc.cs)
		a.replaceAll(cs)
		got, err := a.render()
		if err != nil {
			t.Fatal(err)
		}
		if want := full(cs, tc.opts); !bytes.Equal(got, want) {
			t.Errorf("%s: assembler differs from Build:\ngot  %s\nwant %s", tc.name, got, want)
		}
		// The served bytes themselves pass Traefik's strict decoder.
		if _, err := decodeLikeTraefik(got); err != nil {
			t.Errorf("%s: paerser refuses the served bytes: %v", tc.name, err)
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for _, o := range []Options{plain, secure} {
		a := newAssembler(o)
		state := map[string]domain.Container{}
		for step := 0; step < 400; step++ {
			id := fmt.Sprintf("id-%d", rng.IntN(30))
			var ids []string
			var changed []domain.Container
			if rng.IntN(5) == 0 {
				delete(state, id)
				ids = []string{id}
			} else {
				c := randomContainer(rng, id)
				state[id] = c
				ids, changed = []string{id}, []domain.Container{c}
			}
			a.update(ids, changed)
			got, err := a.render()
			if err != nil {
				t.Fatal(err)
			}
			var cs []domain.Container
			for _, c := range state {
				cs = append(cs, c)
			}
			if want := full(cs, o); !bytes.Equal(got, want) {
				t.Fatalf("step %d: assembler differs from Build:\ngot  %s\nwant %s", step, got, want)
			}
		}
	}
}

func withIDs(cs []domain.Container) []domain.Container {
	out := make([]domain.Container, len(cs))
	for i, c := range cs {
		c.ID = fmt.Sprintf("id-%d", i)
		out[i] = c
	}
	return out
}

// randomContainer varies everything routing depends on; names stay tied to
// ids (as in the database) and aliases collide on purpose.
func randomContainer(rng *rand.Rand, id string) domain.Container {
	name := "n" + id[3:]
	var ins []domain.Instance
	for i := 0; i < rng.IntN(3); i++ {
		st := []domain.Status{domain.StatusRunning, domain.StatusRunning, domain.StatusStopped}[rng.IntN(3)]
		h := []string{"", "healthy", "starting"}[rng.IntN(3)]
		ins = append(ins, domain.Instance{Index: i, InternalIP: fmt.Sprintf("10.0.%d.%d", rng.IntN(3), rng.IntN(5)), Status: st, Health: h})
	}
	var r *domain.Routing
	if rng.IntN(2) == 0 {
		r = &domain.Routing{HTTPSRedirect: rng.IntN(2) == 0}
		for i := 0; i < rng.IntN(3); i++ {
			r.Aliases = append(r.Aliases, fmt.Sprintf("a%d.example.com", rng.IntN(4)+i*10))
		}
		if rng.IntN(3) == 0 {
			r.Aliases = append(r.Aliases, fmt.Sprintf("n%d.moor.localhost", rng.IntN(30)))
		}
		if rng.IntN(3) == 0 {
			r.Path = "/p"
			r.BasicAuth = []string{"u:h"}
		}
		if rng.IntN(3) == 0 {
			r.TCP = []domain.TCPRoute{{Port: "pg", EntryPoint: "postgres"}}
		}
	}
	status := []domain.Status{domain.StatusRunning, domain.StatusStopped, domain.StatusPending}[rng.IntN(3)]
	return domain.Container{ID: id, Name: name, Status: status, Instances: ins,
		Spec: domain.Type{Ports: []domain.PortSpec{webPort, {Name: "pg", Port: 5432, Protocol: "tcp"}}, Routing: r}}
}
