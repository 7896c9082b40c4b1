package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// op documents one route of the table: what it takes and what it answers.
// Schemas come from the Go types the handlers encode and decode, so the
// document cannot drift from the code; TestOpenAPI holds every route to
// having one, and the e2e test checks real answers against it.
type op struct {
	summary string
	query   []param
	body    any // request body, a value of its Go type; nil: none
	// optional: the body may be left out (its fields' zero values apply)
	optional bool
	status   int // success status
	resp     any // response body, a value of its Go type; nil: none
	text     bool
}

type param struct {
	name, typ, doc string
}

type (
	typeList struct {
		Types []domain.Type `json:"types"`
	}
	projectPatch struct {
		MaxContainers *int     `json:"max_containers,omitempty"`
		MaxMemoryMB   *int64   `json:"max_memory_mb,omitempty"`
		MaxCPUs       *float64 `json:"max_cpus,omitempty"`
	}
	memberList struct {
		Members []domain.Member `json:"members"`
	}
	projectList struct {
		Projects []domain.Project `json:"projects"`
	}
	containerList struct {
		Containers []domain.Container `json:"containers"`
	}
	historyList struct {
		History []domain.HistoryEntry `json:"history"`
	}
	credentialMap struct {
		Credentials map[string]string `json:"credentials"`
	}
	eventList struct {
		Events []domain.Event `json:"events"`
	}
	webhookList struct {
		Webhooks []domain.Webhook `json:"webhooks"`
	}
	health struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}
	readiness struct {
		Ready        bool              `json:"ready"`
		Checks       map[string]string `json:"checks"`
		LastEventSeq int64             `json:"last_event_seq,omitempty"`
	}
	signIn struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	signedIn struct {
		User domain.Actor `json:"user"`
	}
	scaleReq struct {
		Replicas int `json:"replicas"`
	}
	apiKeyReq struct {
		Name    string `json:"name"`
		Role    string `json:"role"`
		Project string `json:"project,omitempty"`
	}
	apiKeyResp struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Role    string `json:"role"`
		Project string `json:"project,omitempty"`
		Key     string `json:"key"`
	}
	webhookReq struct {
		Name   string   `json:"name"`
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	webhookCreated struct {
		domain.Webhook
		Secret string `json:"secret"`
	}
	setupState struct {
		Needed bool `json:"needed"`
	}
	setupReq struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Token    string `json:"token"`
	}
	apiKeyList struct {
		APIKeys []domain.APIKey `json:"apikeys"`
	}
	userList struct {
		Users []domain.User `json:"users"`
	}
	userReq struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Role     string `json:"role"`
	}
	passwordReq struct {
		Password        string `json:"password"`
		CurrentPassword string `json:"current_password,omitempty"`
	}
)

var ops = map[string]op{
	"GET /healthz":                  {summary: "Liveness", status: 200, resp: health{}},
	"GET /readyz":                   {summary: "Readiness: database and Docker reachable (503 when not)", status: 200, resp: readiness{}},
	"GET /metrics":                  {summary: "Prometheus metrics", status: 200, text: true},
	"POST /api/v1/session":          {summary: "Sign in: sets the moor_session cookie", body: signIn{}, status: 200, resp: signedIn{}},
	"GET /api/v1/session":           {summary: "Who is calling", status: 200, resp: signedIn{}},
	"DELETE /api/v1/session":        {summary: "Sign out: ends the session", status: 204},
	"GET /api/v1/setup":             {summary: "Whether the first admin may still be created (no user yet, setup token valid)", status: 200, resp: setupState{}},
	"POST /api/v1/setup":            {summary: "First run: create the first admin with the one-time token moor printed; signs in", body: setupReq{}, status: 201, resp: signedIn{}},
	"GET /api/v1/types":             {summary: "Catalog of container types", query: []param{{"category", "string", "only types in this category"}}, status: 200, resp: typeList{}},
	"GET /api/v1/types/{id}":        {summary: "One container type", status: 200, resp: domain.Type{}},
	"GET /api/v1/containers":        {summary: "Managed containers", status: 200, resp: containerList{}},
	"POST /api/v1/containers":       {summary: "Deploy a container of a catalog type (publish: some of its ports on the host)", body: domain.CreateRequest{}, status: 202, resp: domain.Container{}},
	"GET /api/v1/containers/{name}": {summary: "One container", status: 200, resp: domain.Container{}},
	"PATCH /api/v1/containers/{name}": {summary: "Change env (null: leave empty), image tag, replicas or the ports published on the host; a new image, env or publish list replaces the replicas one at a time",
		body: domain.Patch{}, status: 202, resp: domain.Container{}},
	"DELETE /api/v1/containers/{name}": {summary: "Remove a container (volumes too, unless keep_volumes)",
		query: []param{{"keep_volumes", "boolean", "keep the container's named volumes"}}, status: 202, resp: domain.Container{}},
	"POST /api/v1/containers/{name}/start":   {summary: "Start", status: 202, resp: domain.Container{}},
	"POST /api/v1/containers/{name}/stop":    {summary: "Stop (replicas drained from Traefik first)", status: 202, resp: domain.Container{}},
	"POST /api/v1/containers/{name}/restart": {summary: "Rolling restart, one replica at a time", status: 202, resp: domain.Container{}},
	"POST /api/v1/containers/{name}/scale":   {summary: "Change the number of replicas", body: scaleReq{}, status: 202, resp: domain.Container{}},
	"POST /api/v1/containers/{name}/redeploy": {summary: "Replace every replica, one at a time (the body is optional); pull: pull the image again first, even if present (a moved tag)",
		body: domain.RedeployRequest{}, optional: true, status: 202, resp: domain.Container{}},
	"GET /api/v1/containers/{name}/logs": {summary: "Logs (text)", query: []param{{"tail", "integer", "lines, 1-10000 (200)"},
		{"replica", "integer", "replica index (0)"}, {"follow", "boolean", "then stream new lines until the replica stops or the client leaves (counts as one of the key's websockets)"}}, status: 200, text: true},
	"GET /api/v1/containers/{name}/history": {summary: "Deployment history (kept after removal)",
		query: []param{{"all", "boolean", "also the history of earlier containers of the same name"}}, status: 200, resp: historyList{}},
	"GET /api/v1/containers/{name}/credentials": {summary: "Generated secrets", status: 200, resp: credentialMap{}},
	"GET /api/v1/containers/{name}/backups": {summary: "Volume backups of the container (and of earlier containers of the same name), newest first",
		status: 200, resp: backupList{}},
	"POST /api/v1/containers/{name}/backups": {summary: "Back up each named volume of replica 0 now: rows recorded running, archived in the background (events backup.started, backup.done, backup.failed); host paths are skipped",
		status: 202, resp: domain.BackupsStarted{}},
	"POST /api/v1/containers/{name}/backups/{id}/restore": {summary: "Restore a backup into the container's volume (replica 0): the archive is checked whole first " +
		"(missing 404, another key 409, damaged 422: nothing changed), then the replicas are removed, the volume replaced and the replicas recreated " +
		"(events backup.restoring, backup.restored or backup.restore_failed)",
		status: 202, resp: domain.Restore{}},
	"GET /api/v1/stacks": {summary: "Compose stacks, with their services and containers (the compose text for operators)", status: 200, resp: stackList{}},
	"POST /api/v1/stacks": {summary: "Deploy a compose file as a stack: one container per service (STACK-SERVICE), all or none; 422 names an unsupported key and its service, 403 an admin-only one",
		body: stackCreate{}, status: 202, resp: domain.Stack{}},
	"GET /api/v1/stacks/{name}": {summary: "One stack: its compose text (operators) and services (container, status, definition hash)", status: 200, resp: domain.Stack{}},
	"PUT /api/v1/stacks/{name}": {summary: "Deploy a new version of the compose file: changed services are replaced, unchanged ones left running, new ones created, those gone removed",
		query: []param{{"remove_volumes", "boolean", "the containers of services gone from the file lose their volumes too"}}, body: stackUpdate{}, status: 202, resp: domain.Stack{}},
	"DELETE /api/v1/stacks/{name}": {summary: "Remove a stack: its containers go (their volumes too with remove_volumes), then the stack",
		query: []param{{"remove_volumes", "boolean", "remove the containers' named volumes too"}}, status: 202, resp: domain.Stack{}},
	"GET /api/v1/projects":           {summary: "Projects, with their quotas and number of containers", status: 200, resp: projectList{}},
	"POST /api/v1/projects":          {summary: "Create a project: its own network, DNS names and quotas (internal: no traffic out of the host)", body: domain.NewProject{}, status: 201, resp: domain.Project{}},
	"GET /api/v1/projects/{project}": {summary: "One project", status: 200, resp: domain.Project{}},
	"PATCH /api/v1/projects/{project}": {summary: "Change a project's quotas (null: no limit; a quota lowered below the use holds new containers and growth off)",
		body: projectPatch{}, status: 200, resp: domain.Project{}},
	"GET /api/v1/projects/{project}/members": {summary: "A project's members: users and API keys with a role there (admins of the project)", status: 200, resp: memberList{}},
	"POST /api/v1/projects/{project}/members": {summary: "Give a user or API key a role in the project (replaces its role there)",
		body: domain.MemberRequest{}, status: 200, resp: domain.Member{}},
	"DELETE /api/v1/projects/{project}/members/{kind}/{member}": {summary: "Take a member's role in the project away (kind: user or apikey)", status: 204},
	"DELETE /api/v1/projects/{project}":                         {summary: "Delete an empty project (409 naming its containers otherwise) and its network", status: 204},
	"GET /api/v1/events": {summary: "Events after a sequence number, oldest first", query: []param{
		{"after", "integer", "sequence number to start after (0: from the oldest kept); 410 if events after it were pruned (unfiltered listing only)"}, {"limit", "integer", "1-1000 (100)"},
		{"tail", "integer", "1-1000: the newest N events instead (still oldest first)"},
		{"project", "string", "only events of this project's containers"},
		{"container", "string", "only this container's events (with project: of that project)"},
		{"kind", "string", "only kinds starting with this, e.g. image.pull or container."}}, status: 200, resp: eventList{}},
	"GET /api/v1/ws": {summary: "Websocket of events, one JSON message each; resumes with ?after=SEQ",
		query: []param{{"after", "integer", "resume after this event (0: the oldest kept); absent: start with the next one; closes with 4410 if events after it were pruned"}}, status: 101},
	"GET /api/v1/openapi.json":        {summary: "This document", status: 200, resp: map[string]any{}},
	"POST /api/v1/apikeys":            {summary: "Create an API key (shown once)", body: apiKeyReq{}, status: 201, resp: apiKeyResp{}},
	"GET /api/v1/apikeys":             {summary: "API keys (never the keys themselves), revoked ones too", status: 200, resp: apiKeyList{}},
	"DELETE /api/v1/apikeys/{name}":   {summary: "Revoke an API key at once", status: 200, resp: domain.APIKey{}},
	"GET /api/v1/users":               {summary: "Users, with their live sessions", status: 200, resp: userList{}},
	"POST /api/v1/users":              {summary: "Add a user", body: userReq{}, status: 201, resp: domain.User{}},
	"DELETE /api/v1/users/{username}": {summary: "Remove a user and end their sessions (not the last admin, not yourself)", status: 204},
	"PUT /api/v1/users/{username}/password": {summary: "Change a password (admins: anyone's; a user: their own, with current_password); ends the user's other sessions",
		body: passwordReq{}, status: 204},
	"POST /api/v1/webhooks":          {summary: "Create a webhook (its signing secret is shown once)", body: webhookReq{}, status: 201, resp: webhookCreated{}},
	"GET /api/v1/webhooks":           {summary: "Webhooks and their delivery state", status: 200, resp: webhookList{}},
	"GET /api/v1/webhooks/{name}":    {summary: "One webhook", status: 200, resp: domain.Webhook{}},
	"DELETE /api/v1/webhooks/{name}": {summary: "Delete a webhook", status: 204},
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	b, err := json.MarshalIndent(OpenAPI(s.Version), "", "  ")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
	return nil
}

// documented is the route table, set in init: the table holds the handler
// that serves the document made from the table.
var documented []route

func init() { documented = routes }

// OpenAPI returns the OpenAPI 3.0 document of the API.
func OpenAPI(version string) map[string]any {
	g := &schemaGen{components: map[string]any{}}
	paths := map[string]map[string]any{}
	for _, rt := range documented {
		o, ok := ops[rt.method+" "+baseRoute(rt.path)]
		if !ok {
			continue // TestOpenAPI fails on it
		}
		if baseRoute(rt.path) != rt.path {
			o.summary += " (in a project)"
		}
		item := paths[rt.path]
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		var params []any
		for _, name := range pathParams.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": name[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, p := range o.query {
			params = append(params, map[string]any{"name": p.name, "in": "query", "description": p.doc, "schema": map[string]any{"type": p.typ}})
		}
		success := map[string]any{"description": http.StatusText(o.status)}
		switch {
		case o.text:
			success["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
		case o.resp != nil:
			success["content"] = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(o.resp))}}
		}
		responses := map[string]any{strconv.Itoa(o.status): success,
			"default": map[string]any{"description": "Error", "content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(errorBody{}))}}}}
		operation := map[string]any{
			"summary":     o.summary,
			"operationId": operationID(rt.method, rt.path),
			"responses":   responses,
		}
		if rt.role != "" {
			operation["x-moor-role"] = string(rt.role)
			operation["description"] = "Needs the " + string(rt.role) + " role or higher" + map[scope]string{
				scopeInstance: " instance-wide.", scopeProject: " in the project (instance-wide, or as a member).",
				scopeAny: " anywhere; answers hold only what the caller may read."}[scopeOf(rt)]
		} else {
			operation["security"] = []any{}
		}
		if len(params) > 0 {
			operation["parameters"] = params
		}
		if o.body != nil {
			operation["requestBody"] = map[string]any{"required": !o.optional, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(o.body))}}}
		}
		item[strings.ToLower(rt.method)] = operation
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "moor", "version": version,
			"description": "moor's REST API. Errors are {\"error\":{\"code\",\"message\",\"field\"}}."},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.components,
			"securitySchemes": map[string]any{
				"apiKey":  map[string]any{"type": "http", "scheme": "bearer", "description": "an API key from `moor apikey create`"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie},
			},
		},
		"security": []any{map[string]any{"apiKey": []any{}}, map[string]any{"session": []any{}}},
	}
}

var pathParams = regexp.MustCompile(`\{([a-z]+)\}`)

// operationID is e.g. "postContainersNameStop".
func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.FieldsFunc(strings.TrimPrefix(path, "/api/v1"), func(r rune) bool {
		return r == '/' || r == '{' || r == '}' || r == '.' || r == '_'
	}) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// schemaGen turns Go types into OpenAPI schemas the way encoding/json
// encodes them; named structs become components.
type schemaGen struct {
	components map[string]any
}

var timeType = reflect.TypeOf(time.Time{})
var rawType = reflect.TypeOf(json.RawMessage{})
var portRefType = reflect.TypeOf(domain.PortRef(""))

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"description": "any JSON value", "nullable": true}
	case t == portRefType:
		return map[string]any{"description": "one of the type's ports, by number or name",
			"oneOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.schema(t.Elem())
		if ref, ok := s["$ref"]; ok {
			return map[string]any{"allOf": []any{map[string]any{"$ref": ref}}, "nullable": true}
		}
		s["nullable"] = true
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem()), "nullable": true}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem()), "nullable": true}
	case reflect.Interface:
		return map[string]any{"nullable": true}
	case reflect.Struct:
		if t.Name() == "" || t.PkgPath() != "github.com/moorhq/moor/internal/domain" && t.PkgPath() != "github.com/moorhq/moor/internal/lifecycle" {
			return g.object(t)
		}
		name := t.Name()
		if _, ok := g.components[name]; !ok {
			g.components[name] = map[string]any{} // breaks cycles
			g.components[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	g.fields(t, props, &required)
	sort.Strings(required)
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func (g *schemaGen) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			g.fields(f.Type, props, required) // embedded: flattened, as encoding/json does
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
		if !strings.Contains(opts, "omitempty") {
			*required = append(*required, name)
		}
	}
}
