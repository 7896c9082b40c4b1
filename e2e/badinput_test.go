package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBadInput sends malformed and hostile requests: each gets a clear 4xx
// naming the problem and changes nothing.
func TestBadInput(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	before := e.Count(`SELECT count(*) FROM events`)
	cases := []struct {
		name   string
		body   any
		status int
		field  string // the field the error must name, if any
	}{
		{"malformed json", `{"name": "a",`, 400, ""},
		{"not an object", `[1,2]`, 400, ""},
		{"empty body", ``, 400, ""},
		{"two objects", `{"name":"a","type":"testapp"}{}`, 400, ""},
		{"unknown field", `{"name":"a","type":"testapp","privileged":true}`, 400, ""},
		{"wrong type", `{"name":1,"type":"testapp"}`, 400, ""},
		{"oversize", `{"name":"a","type":"testapp","env":{"MODE":"` + strings.Repeat("x", 70<<10) + `"}}`, 413, ""},
		{"missing name", map[string]any{"type": "testapp"}, 422, "name"},
		{"backtick", map[string]any{"name": "a`b", "type": "testapp"}, 422, "name"},
		{"quote", map[string]any{"name": `a"b`, "type": "testapp"}, 422, "name"},
		{"rule injection", map[string]any{"name": "a`) || Host(`*", "type": "testapp"}, 422, "name"},
		{"dot dot", map[string]any{"name": "..", "type": "testapp"}, 422, "name"},
		{"path", map[string]any{"name": "../etc", "type": "testapp"}, 422, "name"},
		{"unicode", map[string]any{"name": "café", "type": "testapp"}, 422, "name"},
		{"uppercase", map[string]any{"name": "Web", "type": "testapp"}, 422, "name"},
		{"64 chars", map[string]any{"name": strings.Repeat("a", 64), "type": "testapp"}, 422, "name"},
		{"leading dash", map[string]any{"name": "-a", "type": "testapp"}, 422, "name"},
		{"nul", map[string]any{"name": "a\x00b", "type": "testapp"}, 422, "name"},
		{"unknown type", map[string]any{"name": "a", "type": "nosuch"}, 404, ""},
		{"hostile type", map[string]any{"name": "a", "type": "../../etc/passwd"}, 422, "type"},
		{"bad choice", map[string]any{"name": "a", "type": "testapp", "env": map[string]string{"MODE": "evil"}}, 422, "env.MODE"},
		{"undeclared env", map[string]any{"name": "a", "type": "testapp", "env": map[string]string{"LD_PRELOAD": "/x.so"}}, 422, "env.LD_PRELOAD"},
		{"too many replicas", map[string]any{"name": "a", "type": "testapp", "replicas": 1000}, 422, "replicas"},
		{"negative replicas", map[string]any{"name": "a", "type": "testapp", "replicas": -1}, 422, "replicas"},
		{"publish undeclared port", map[string]any{"name": "a", "type": "testapp", "publish": []map[string]any{{"port": 22, "host_port": 2222}}}, 422, "publish[0].port"},
		{"publish port of another kind", map[string]any{"name": "a", "type": "testapp", "publish": []map[string]any{{"port": true, "host_port": 2222}}}, 422, "publish[0].port"},
		{"publish host port 0", map[string]any{"name": "a", "type": "testapp", "publish": []map[string]any{{"port": "http", "host_port": 0}}}, 422, "publish[0].host_port"},
		{"publish host name", map[string]any{"name": "a", "type": "testapp", "publish": []map[string]any{{"port": "http", "host_port": 2222, "host_ip": "evil.example"}}}, 422, "publish[0].host_ip"},
		{"publish unknown field", `{"name":"a","type":"testapp","publish":[{"port":8080,"host_port":2222,"privileged":true}]}`, 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := m.Do("POST", "/api/v1/containers", tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			var eb struct {
				Error struct{ Code, Message, Field string }
			}
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("error body %q", body)
			}
			if tc.field != "" && (eb.Error.Field != tc.field || !strings.Contains(eb.Error.Message, tc.field)) {
				t.Fatalf("error %+v does not name %s", eb.Error, tc.field)
			}
		})
	}
	// Hostile names in paths are 404, never a match or a 500.
	for _, p := range []string{"/api/v1/containers/a%60b", "/api/v1/containers/..%2f..", "/api/v1/containers/" + strings.Repeat("a", 64), "/api/v1/containers/caf%C3%A9/stop"} {
		method := "GET"
		if strings.HasSuffix(p, "/stop") {
			method = "POST"
		}
		if status, body := m.Do(method, p, nil); status != 404 {
			t.Errorf("%s %s: %d %s", method, p, status, body)
		}
	}
	// Wrong content type.
	req := `{"name":"ok","type":"testapp"}`
	if status, _ := m.DoCT("POST", "/api/v1/containers", req, "text/plain"); status != 415 {
		t.Errorf("text/plain body: %d", status)
	}
	if n := e.Count(`SELECT count(*) FROM containers`); n != 0 {
		t.Fatalf("bad input created %d containers", n)
	}
	if after := e.Count(`SELECT count(*) FROM events`); after != before {
		t.Fatalf("bad input wrote %d events", after-before)
	}
}
