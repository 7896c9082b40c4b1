package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/moorhq/moor/internal/testenv"
)

// TestOpenAPIMatchesAnswers: the document moor serves describes what moor
// really answers: each call of a user's session below is checked against
// it, status and body.
func TestOpenAPIMatchesAnswers(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	status, body := m.Do("GET", "/api/v1/openapi.json", nil)
	if status != 200 {
		t.Fatalf("openapi.json: %d %s", status, body)
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("served document is invalid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: m.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	setupToken := regexp.MustCompile(`\?setup=([A-Za-z0-9]+) `).FindStringSubmatch(m.Logs())
	if setupToken == nil {
		t.Fatal("no setup link printed")
	}

	checked := map[string]bool{}
	call := func(method, path string, reqBody any, wantStatus int) []byte {
		t.Helper()
		var rd io.Reader = http.NoBody
		if reqBody != nil {
			b, _ := json.Marshal(reqBody)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, m.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+e.Admin)
		if reqBody != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, got, wantStatus)
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s is not in the document: %v", method, path, err)
		}
		checked[method+" "+route.Path] = true
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
			Status: resp.StatusCode, Header: resp.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		in.SetBodyBytes(got)
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s %s: the answer does not match the document: %v\n%s", method, path, err, got)
		}
		return got
	}

	name := "oa-" + randSuffix()
	call("GET", "/api/v1/setup", nil, 200)
	call("POST", "/api/v1/setup", map[string]any{"username": "oa", "password": testPassword, "token": setupToken[1]}, 201)
	call("GET", "/healthz", nil, 200)
	call("GET", "/readyz", nil, 200)
	call("GET", "/api/v1/types", nil, 200)
	call("GET", "/api/v1/types/testapp", nil, 200)
	// Every container route, at base (the default project's or a
	// project's) for the container ref names.
	containerCalls := func(base, ref string) {
		call("POST", base, map[string]any{"name": name, "type": "testapp", "replicas": 2}, 202)
		m.WaitStatus(ref, "running", 90*time.Second)
		call("GET", base, nil, 200)
		call("GET", base+"/"+name, nil, 200)
		call("GET", base+"/"+name+"/history", nil, 200)
		call("GET", base+"/"+name+"/credentials", nil, 200)
		var started struct{ Backups []backupRow }
		json.Unmarshal(call("POST", base+"/"+name+"/backups", nil, 202), &started)
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			var l struct{ Backups []backupRow }
			json.Unmarshal(call("GET", base+"/"+name+"/backups", nil, 200), &l)
			if len(l.Backups) > 0 && l.Backups[0].Status == "done" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("backup not done: %+v", l)
			}
		}
		call("POST", base+"/"+name+"/backups/"+started.Backups[0].ID+"/restore", nil, 202)
		m.WaitStatus(ref, "running", 90*time.Second)
		call("GET", base+"/"+name+"/logs?tail=5", nil, 200)
		call("POST", base+"/"+name+"/scale", map[string]any{"replicas": 1}, 202)
		call("PATCH", base+"/"+name, map[string]any{"env": map[string]any{"MODE": "worker", "GREETING": nil}}, 202)
		call("PATCH", base+"/"+name, map[string]any{"publish": []map[string]any{{"port": "http", "host_port": testenv.FreeTCPPort(t)}}}, 202)
		call("POST", base+"/"+name+"/stop", nil, 202)
		call("POST", base+"/"+name+"/start", nil, 202)
		call("POST", base+"/"+name+"/restart", nil, 202)
		call("POST", base+"/"+name+"/redeploy", map[string]any{"pull": false}, 202)
	}
	containerCalls("/api/v1/containers", name)
	// Every stack route, at base, for the project ref (PROJECT/ or "").
	stackCalls := func(base, ref string) {
		compose := "services:\n  s1:\n    image: " + testenv.TestImage(t) + "\n"
		call("POST", base, map[string]any{"name": "oas", "compose": compose}, 202)
		call("GET", base, nil, 200)
		call("GET", base+"/oas", nil, 200)
		call("PUT", base+"/oas", map[string]any{"compose": compose + "    environment:\n      MODE: x\n"}, 202)
		call("DELETE", base+"/oas?remove_volumes=true", nil, 202)
		m.WaitFor(ref+"oas-s1", 60*time.Second, "gone", func(_ Container, ok bool) bool { return !ok })
		call("GET", base+"/oas", nil, 404)
	}
	stackCalls("/api/v1/stacks", "")
	call("POST", "/api/v1/projects", map[string]any{"name": "oa", "internal": true, "max_containers": 5}, 201)
	call("GET", "/api/v1/projects", nil, 200)
	call("GET", "/api/v1/projects/oa", nil, 200)
	call("PATCH", "/api/v1/projects/oa", map[string]any{"max_containers": 10, "max_cpus": nil}, 200)
	call("POST", "/api/v1/users", map[string]any{"username": "oa-member", "password": testPassword, "role": "none"}, 201)
	call("POST", "/api/v1/projects/oa/members", map[string]any{"kind": "user", "name": "oa-member", "role": "operator"}, 200)
	call("GET", "/api/v1/projects/oa/members", nil, 200)
	call("DELETE", "/api/v1/projects/oa/members/user/oa-member", nil, 204)
	containerCalls("/api/v1/projects/oa/containers", "oa/"+name)
	stackCalls("/api/v1/projects/oa/stacks", "oa/")
	call("GET", "/api/v1/events?after=0&limit=1000", nil, 200)
	call("POST", "/api/v1/apikeys", map[string]any{"name": "oa-key", "role": "viewer"}, 201)
	call("GET", "/api/v1/apikeys", nil, 200)
	call("DELETE", "/api/v1/apikeys/oa-key", nil, 200)
	call("POST", "/api/v1/users", map[string]any{"username": "oa-2", "password": testPassword, "role": "viewer"}, 201)
	call("GET", "/api/v1/users", nil, 200)
	call("PUT", "/api/v1/users/oa-2/password", map[string]any{"password": testPassword + "!"}, 204)
	call("DELETE", "/api/v1/users/oa-2", nil, 204)
	call("POST", "/api/v1/webhooks", map[string]any{"name": "oa-hook", "url": "https://hooks.example.org/x", "events": []string{"*"}}, 201)
	call("GET", "/api/v1/webhooks", nil, 200)
	call("GET", "/api/v1/webhooks/oa-hook", nil, 200)
	call("DELETE", "/api/v1/webhooks/oa-hook", nil, 204)
	call("GET", "/api/v1/session", nil, 200)
	call("POST", "/api/v1/session", map[string]any{"username": "oa", "password": testPassword}, 200)
	call("DELETE", "/api/v1/session", nil, 204)
	call("GET", "/api/v1/openapi.json", nil, 200)
	// Errors have the documented shape too.
	call("GET", "/api/v1/containers/nosuch", nil, 404)
	call("POST", "/api/v1/containers", map[string]any{"name": "Bad`", "type": "testapp"}, 422)
	call("DELETE", "/api/v1/containers/"+name, nil, 202)
	call("DELETE", "/api/v1/projects/oa/containers/"+name, nil, 202)
	call("DELETE", "/api/v1/projects/oa", nil, 409) // until its container is gone
	m.WaitFor("oa/"+name, 60*time.Second, "gone", func(_ Container, ok bool) bool { return !ok })
	call("DELETE", "/api/v1/projects/oa", nil, 204)

	var missed []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !checked[method+" "+path] && path != "/api/v1/ws" && path != "/metrics" {
				missed = append(missed, method+" "+path)
			}
		}
	}
	if len(missed) > 0 {
		t.Errorf("operations no call checked: %s", strings.Join(missed, ", "))
	}
}
