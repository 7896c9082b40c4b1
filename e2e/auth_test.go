package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/moorhq/moor/api"
	"github.com/moorhq/moor/internal/domain"
)

// TestEveryRouteIsAuthorised calls every route with no key, a forged key and
// each role, and checks who gets through.
func TestEveryRouteIsAuthorised(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	keys := map[domain.Role]string{domain.RoleAdmin: e.Admin}
	for _, r := range []domain.Role{domain.RoleViewer, domain.RoleOperator} {
		keys[r] = strings.TrimSpace(e.run("apikey", "create", "--name", "k-"+string(r), "--role", string(r)))
	}
	forged := "moor_" + strings.Repeat("A", 43)
	routes := api.Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		path := strings.NewReplacer("{name}", "nosuch", "{id}", "nosuch", "{username}", "nosuch", "{project}", "nosuch").Replace(rt.Path)
		if rt.Role == "" {
			if !(rt.Path == "/healthz" || rt.Path == "/readyz" || rt.Path == "/api/v1/setup" || rt.Method == "POST" && rt.Path == "/api/v1/session") {
				t.Errorf("%s %s is public", rt.Method, rt.Path)
			}
			continue
		}
		if !strings.HasPrefix(rt.Path, "/api/v1/") && rt.Path != "/metrics" {
			t.Errorf("%s %s: protected route outside /api/v1", rt.Method, rt.Path)
		}
		for name, key := range map[string]string{"no key": "", "forged key": forged, "garbage": "x`y"} {
			if status, body := m.Do(rt.Method, path, nil, key); status != 401 {
				t.Errorf("%s %s with %s: %d %s", rt.Method, path, name, status, body)
			}
		}
		for role, key := range keys {
			status, body := m.Do(rt.Method, path, nil, key)
			allowed := role.Allows(rt.Role)
			switch {
			case allowed && (status == 401 || status == 403):
				t.Errorf("%s %s as %s: %d %s, want allowed", rt.Method, path, role, status, body)
			case !allowed && status != 403:
				t.Errorf("%s %s as %s: %d %s, want 403", rt.Method, path, role, status, body)
			}
		}
	}
	// Operators can never deploy a type that reaches outside its container
	// (host mounts, host networking, devices); admins can.
	op := keys[domain.RoleOperator]
	for _, typ := range []string{"testapp-hostmount", "testapp-hostnet", "testapp-device"} {
		status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "hm", "type": typ}, op)
		if status != 403 || !strings.Contains(string(body), "only admins may deploy") {
			t.Fatalf("operator deployed %s: %d %s", typ, status, body)
		}
	}
	if n := e.Count(`SELECT count(*) FROM containers`); n != 0 {
		t.Fatalf("refused deploy left %d rows", n)
	}
	if status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "hm", "type": "testapp-hostmount"}); status != 202 {
		t.Fatalf("admin could not deploy a host-mount type: %d %s", status, body)
	}
	// ...and what only admins may deploy, only admins may operate.
	for _, op2 := range []string{"stop", "restart", "scale"} {
		if status, body := m.Do("POST", "/api/v1/containers/hm/"+op2, map[string]any{"replicas": 2}, op); status != 403 {
			t.Errorf("operator could %s an admin-only container: %d %s", op2, status, body)
		}
	}
	if status, _ := m.Do("DELETE", "/api/v1/containers/hm", nil, op); status != 403 {
		t.Errorf("operator could remove an admin-only container: %d", status)
	}
	// ...or read its credentials and logs, which admins can.
	for _, read := range []string{"credentials", "logs"} {
		if status, body := m.Do("GET", "/api/v1/containers/hm/"+read, nil, op); status != 403 {
			t.Errorf("operator read the %s of an admin-only container: %d %s", read, status, body)
		}
		if status, body := m.Do("GET", "/api/v1/containers/hm/"+read, nil); status == 401 || status == 403 {
			t.Errorf("admin could not read the %s of an admin-only container: %d %s", read, status, body)
		}
	}
	// Keys are stored as hashes only.
	for _, key := range keys {
		if n := e.Count(`SELECT count(*) FROM api_keys WHERE encode(hash, 'escape') LIKE '%' || $1 || '%'`, key[5:20]); n != 0 {
			t.Fatal("a key is stored in clear")
		}
	}
}

// TestAuditNamesTheActor: every change made through the API is recorded
// with who made it, not as moor itself.
func TestAuditNamesTheActor(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	if status, body := m.Do("POST", "/api/v1/apikeys", map[string]any{"name": "made-by-admin", "role": "viewer"}); status != 201 {
		t.Fatalf("create key: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/webhooks", map[string]any{"name": "wh", "url": "https://example.org/hook", "events": []string{"*"}}); status != 201 {
		t.Fatalf("create webhook: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "audited", "type": "testapp"}); status != 202 {
		t.Fatalf("create container: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/containers/audited/stop", nil); status != 202 {
		t.Fatalf("stop: %d %s", status, body)
	}
	for _, kind := range []string{"apikey.created", "webhook.created", "container.created", "container.stop_requested"} {
		if n := e.Count(`SELECT count(*) FROM events WHERE kind = $1 AND actor = 'apikey:test-admin'`, kind); n != 1 {
			rows := e.Query(`SELECT kind, actor FROM events WHERE kind = $1`, kind)
			t.Errorf("%s recorded as %v, want by apikey:test-admin", kind, rows)
		}
	}
}

// TestAliasesStayInTheirZone: an operator's aliases stay inside the host
// zone or the domains an admin allowed; any other name (localhost, another
// team's domain) is for admins only.
func TestAliasesStayInTheirZone(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_ALIAS_DOMAINS=team.example.org")
	op := strings.TrimSpace(e.run("apikey", "create", "--name", "op", "--role", "operator"))
	cases := []struct {
		alias string
		want  int
	}{
		{"www.moor.localhost", 202},
		{"shop.team.example.org", 202},
		{"localhost", 403},
		{"moor.localhost", 403}, // the zone itself: moor's own names live there
		{"other.example.org", 403},
		{"team.example.org.evil.com", 403},
	}
	for i, c := range cases {
		name := "al" + strconv.Itoa(i)
		status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": name, "type": "testapp", "aliases": []string{c.alias}}, op)
		if status != c.want {
			t.Errorf("operator, alias %s: %d %s, want %d", c.alias, status, body, c.want)
		}
		if status == 403 && !strings.Contains(string(body), "aliases[0]") {
			t.Errorf("refusal does not name the field: %s", body)
		}
	}
	if status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "adm", "type": "testapp", "aliases": []string{"localhost"}}); status != 202 {
		t.Errorf("admin, alias localhost: %d %s", status, body)
	}
}
