package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAccounts: admins list and revoke keys and manage users through the
// API; a password change ends the user's other sessions; the last admin
// and oneself cannot be removed; every change is recorded with its actor.
func TestAccounts(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	viewer := strings.TrimSpace(e.run("apikey", "create", "--name", "v", "--role", "viewer"))

	// Keys: listed without the key, revoked at once.
	status, body := m.Do("GET", "/api/v1/apikeys", nil)
	if status != 200 || !strings.Contains(string(body), `"name": "v"`) || strings.Contains(string(body), viewer[5:20]) {
		t.Fatalf("list keys: %d %s", status, body)
	}
	if status, _ := m.Do("GET", "/api/v1/containers", nil, viewer); status != 200 {
		t.Fatalf("viewer key: %d", status)
	}
	if status, body := m.Do("DELETE", "/api/v1/apikeys/v", nil); status != 200 || !strings.Contains(string(body), "revoked_at") {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if status, _ := m.Do("GET", "/api/v1/containers", nil, viewer); status != 401 {
		t.Errorf("a revoked key still works: %d", status)
	}
	if status, _ := m.Do("DELETE", "/api/v1/apikeys/nosuch", nil); status != 404 {
		t.Errorf("revoke unknown: %d", status)
	}

	// Users.
	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"username": "Ann!", "password": testPassword, "role": "operator"}, "username"},
		{map[string]any{"username": "ann", "password": "short", "role": "operator"}, "password"},
		{map[string]any{"username": "ann", "password": testPassword, "role": "root"}, "role"},
	} {
		if status, body := m.Do("POST", "/api/v1/users", bad.body); status != 422 || !strings.Contains(string(body), `"field": "`+bad.field+`"`) {
			t.Errorf("%v: %d %s", bad.body, status, body)
		}
	}
	for _, u := range []struct{ name, role string }{{"ann", "operator"}, {"root", "admin"}} {
		if status, body := m.Do("POST", "/api/v1/users", map[string]any{"username": u.name, "password": testPassword, "role": u.role}); status != 201 {
			t.Fatalf("add %s: %d %s", u.name, status, body)
		}
	}
	if status, _ := m.Do("POST", "/api/v1/users", map[string]any{"username": "ann", "password": testPassword, "role": "viewer"}); status != 409 {
		t.Errorf("duplicate user: %d", status)
	}
	signIn := func(user, pw string) *browserish {
		b := newBrowserish(t, m)
		if status, body, _ := b.do("POST", "/api/v1/session", map[string]any{"username": user, "password": pw}); status != 200 {
			t.Fatalf("sign in %s: %d %s", user, status, body)
		}
		return b
	}
	ann1, ann2 := signIn("ann", testPassword), signIn("ann", testPassword)
	status, body = m.Do("GET", "/api/v1/users", nil)
	var users struct {
		Users []struct {
			Username string
			Role     string
			Sessions int
		}
	}
	json.Unmarshal(body, &users)
	if status != 200 || len(users.Users) != 2 || users.Users[0].Username != "ann" || users.Users[0].Sessions != 2 {
		t.Errorf("users: %d %s", status, body)
	}
	// Ann changes her own password: the current one is needed; her other
	// session ends, this one goes on.
	newPw := "a whole new passphrase"
	if status, body, _ := ann1.do("PUT", "/api/v1/users/ann/password", map[string]any{"password": newPw, "current_password": "wrong one here"}); status != 422 ||
		!strings.Contains(body, "current_password") {
		t.Errorf("wrong current password: %d %s", status, body)
	}
	if status, body, _ := ann1.do("PUT", "/api/v1/users/root/password", map[string]any{"password": newPw}); status != 403 {
		t.Errorf("an operator changed an admin's password: %d %s", status, body)
	}
	if status, body, _ := ann1.do("PUT", "/api/v1/users/ann/password", map[string]any{"password": newPw, "current_password": testPassword}); status != 204 {
		t.Fatalf("change own password: %d %s", status, body)
	}
	if status, _, _ := ann1.do("GET", "/api/v1/session", nil); status != 200 {
		t.Errorf("the session that changed the password ended: %d", status)
	}
	if status, _, _ := ann2.do("GET", "/api/v1/session", nil); status != 401 {
		t.Errorf("ann's other session survived the change: %d", status)
	}
	// An admin resets it: every session of hers ends.
	if status, body := m.Do("PUT", "/api/v1/users/ann/password", map[string]any{"password": testPassword}); status != 204 {
		t.Fatalf("admin reset: %d %s", status, body)
	}
	if status, _, _ := ann1.do("GET", "/api/v1/session", nil); status != 401 {
		t.Errorf("ann's session survived an admin's reset: %d", status)
	}
	signIn("ann", testPassword)

	// Removing: not oneself, not the last admin.
	root := signIn("root", testPassword)
	if status, body, _ := root.do("DELETE", "/api/v1/users/root", nil); status != 409 {
		t.Errorf("removed oneself: %d %s", status, body)
	}
	if status, _ := m.Do("DELETE", "/api/v1/users/ann", nil); status != 204 {
		t.Errorf("remove ann: %d", status)
	}
	if status, body := m.Do("DELETE", "/api/v1/users/root", nil); status != 409 || !strings.Contains(string(body), "last admin") {
		t.Errorf("removed the last admin: %d %s", status, body)
	}
	b := newBrowserish(t, m)
	if status, _, _ := b.do("POST", "/api/v1/session", map[string]any{"username": "ann", "password": testPassword}); status != 401 {
		t.Errorf("a removed user signs in: %d", status)
	}
	// The audit trail names the admin.
	for _, kind := range []string{"apikey.revoked", "user.created", "user.password_changed", "user.removed"} {
		if n := e.Count(`SELECT count(*) FROM events WHERE kind = $1 AND actor = 'apikey:test-admin'`, kind); n == 0 {
			t.Errorf("no %s event by apikey:test-admin", kind)
		}
	}
	if n := e.Count(`SELECT count(*) FROM events WHERE kind = 'user.password_changed' AND actor = 'user:ann'`); n != 1 {
		t.Errorf("ann's own change recorded %d times as hers", n)
	}
}
