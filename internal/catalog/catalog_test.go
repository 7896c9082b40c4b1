package catalog

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

var builtinIDs = []string{"code-server", "n8n", "nginx", "postgres", "redis", "testapp"}

func TestBuiltinTypesLoadAndValidate(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ty := range c.List() {
		ids = append(ids, ty.ID)
		if err := Validate(ty); err != nil {
			t.Errorf("%s: %v", ty.ID, err)
		}
		if ty.Source != SourceBuiltin {
			t.Errorf("%s: source %q", ty.ID, ty.Source)
		}
		if len(ty.Categories) == 0 || ty.Health == nil || ty.Resources.MemoryMB == 0 || ty.Restart != domain.RestartAlways {
			t.Errorf("%s: want categories, a health check, a memory limit and restart always: %+v", ty.ID, ty)
		}
		if ty.RequiresAdmin() {
			t.Errorf("%s: a builtin type should not need admin", ty.ID)
		}
		for _, e := range ty.Env {
			if e.Generate != "" && !e.IsSecret() {
				t.Errorf("%s: generated %s should be secret", ty.ID, e.Name)
			}
		}
	}
	if !slices.Equal(ids, builtinIDs) {
		t.Errorf("builtin ids = %q, want %q", ids, builtinIDs)
	}
	if len(c.Skipped()) != 0 {
		t.Errorf("skipped: %+v", c.Skipped())
	}
}

func TestBuiltinSpecifics(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(id string) domain.Type {
		ty, err := c.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		return ty
	}
	env := func(ty domain.Type, name string) domain.EnvSpec {
		for _, e := range ty.Env {
			if e.Name == name {
				return e
			}
		}
		t.Fatalf("%s has no env %s", ty.ID, name)
		return domain.EnvSpec{}
	}
	httpPort := func(ty domain.Type) int {
		p, ok := ty.HTTPPort()
		if !ok {
			return 0
		}
		return p.Port
	}
	volume := func(ty domain.Type) string {
		if len(ty.Volumes) == 0 {
			return ""
		}
		return ty.Volumes[0].Path
	}

	nginx := get("nginx")
	if nginx.Image != "nginx:1.27-alpine" || httpPort(nginx) != 80 {
		t.Errorf("nginx = %+v", nginx)
	}

	pg := get("postgres")
	if pg.Image != "postgres:16-alpine" || pg.Ports[0].Port != 5432 || pg.Ports[0].Protocol != "tcp" || httpPort(pg) != 0 ||
		volume(pg) != "/var/lib/postgresql/data" || pg.Volumes[0].Name != "data" || !strings.Contains(strings.Join(pg.Health.Test, " "), "pg_isready") {
		t.Errorf("postgres = %+v", pg)
	}
	if e := env(pg, "POSTGRES_PASSWORD"); e.Generate != GeneratePassword || !e.IsSecret() {
		t.Errorf("POSTGRES_PASSWORD = %+v", e)
	}
	if e := env(pg, "POSTGRES_USER"); e.Default != "postgres" {
		t.Errorf("POSTGRES_USER = %+v", e)
	}
	if e := env(pg, "POSTGRES_DB"); e.Default == "" {
		t.Errorf("POSTGRES_DB = %+v", e)
	}
	if b := pg.Backup; b == nil || b.Pause || len(b.Dump) != 3 || !strings.Contains(b.Dump[2], `pg_dumpall -U "$POSTGRES_USER"`) ||
		b.DumpFile != "pg_dumpall.sql" {
		t.Errorf("postgres backup = %+v", b)
	}

	redis := get("redis")
	if redis.Image != "redis:7-alpine" || redis.Ports[0].Port != 6379 || volume(redis) != "/data" {
		t.Errorf("redis = %+v", redis)
	}

	cs := get("code-server")
	if cs.Image != "codercom/code-server:latest" || httpPort(cs) != 8080 || len(cs.Volumes) == 0 {
		t.Errorf("code-server = %+v", cs)
	}
	if e := env(cs, "PASSWORD"); e.Generate != GeneratePassword || !e.IsSecret() {
		t.Errorf("PASSWORD = %+v", e)
	}

	n8n := get("n8n")
	if n8n.Image != "n8nio/n8n:latest" || httpPort(n8n) != 5678 || volume(n8n) != "/home/node/.n8n" {
		t.Errorf("n8n = %+v", n8n)
	}
	if e := env(n8n, "N8N_ENCRYPTION_KEY"); e.Generate != GenerateHex32 || !e.IsSecret() {
		t.Errorf("N8N_ENCRYPTION_KEY = %+v", e)
	}
	if e := env(n8n, "GENERIC_TIMEZONE"); e.Default == "" {
		t.Errorf("GENERIC_TIMEZONE = %+v", e)
	}

	app := get("testapp")
	if app.Image != "moor-testapp:latest" || httpPort(app) != 8080 || volume(app) != "/data" || app.Volumes[0].Name != "data" ||
		app.Restart != domain.RestartAlways || app.Resources.MemoryMB != 64 {
		t.Errorf("testapp = %+v", app)
	}
	if !slices.Equal(app.Health.Test, []string{"CMD", "/testapp", "-check"}) || app.Health.Interval != time.Second {
		t.Errorf("testapp health = %+v", app.Health)
	}
	if e := env(app, "MODE"); !slices.Equal(e.Choices, []string{"web", "worker"}) || e.Default != "web" {
		t.Errorf("MODE = %+v", e)
	}
	if e := env(app, "SECRET_TOKEN"); e.Generate != GeneratePassword || !e.IsSecret() {
		t.Errorf("SECRET_TOKEN = %+v", e)
	}
}

func TestGetUnknown(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get("nope")
	if !errors.Is(err, domain.ErrNotFound) || err.Error() != `type "nope": not found` {
		t.Errorf("Get(nope) = %v", err)
	}
}

func TestCatalogHandsOutCopies(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Get("testapp")
	a.Env[0].Choices[0] = "changed"
	a.Health.Test[0] = "NONE"
	a.Ports[0].Port = 1
	l := c.List()
	l[0].Categories[0] = "changed"
	b, _ := c.Get("testapp")
	if b.Env[0].Choices[0] == "changed" || b.Health.Test[0] == "NONE" || b.Ports[0].Port == 1 {
		t.Error("Get returned shared slices")
	}
	if c.List()[0].Categories[0] == "changed" {
		t.Error("List returned shared slices")
	}
	pg, _ := c.Get("postgres")
	pg.Backup.Dump[0] = "changed"
	pg.Backup.DumpFile = "changed"
	if pg2, _ := c.Get("postgres"); pg2.Backup.Dump[0] == "changed" || pg2.Backup.DumpFile == "changed" {
		t.Error("Get shared the backup spec")
	}
}

func TestCatalogConcurrentReads(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				for _, ty := range c.List() {
					if _, err := c.Get(ty.ID); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
}

func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	for _, name := range portainerFiles {
		writeFile(t, dir, name, string(readPortainer(t, name)))
	}
	writeFile(t, dir, "blog.yaml", "id: blog\ntitle: Blog\nimage: ghost:5\nports: [{name: http, port: 2368, http: true}]\n")
	writeFile(t, dir, "mirror.yml", "id: redis\ntitle: Redis (mirror)\nimage: mirror.local/redis:7\n")
	writeFile(t, dir, "taken.yaml", "id: portainer-ghost\ntitle: Mine\nimage: ghost:5\n")
	writeFile(t, dir, ".hidden.yaml", "not: [valid")
	writeFile(t, dir, "README.md", "# ignored")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	c, err := Load(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}

	blog, err := c.Get("blog")
	if err != nil || blog.Source != SourceDir {
		t.Errorf("blog: %+v %v", blog, err)
	}
	redis, _ := c.Get("redis")
	if redis.Image != "mirror.local/redis:7" || redis.Source != SourceDir {
		t.Errorf("a type file should replace the builtin redis: %+v", redis)
	}
	ghost, _ := c.Get("portainer-ghost")
	if ghost.Title != "Mine" {
		t.Errorf("a type file should win over a Portainer template: %+v", ghost)
	}
	if nginx, err := c.Get("portainer-nginx"); err != nil || nginx.Source != SourcePortainer {
		t.Errorf("portainer-nginx: %+v %v", nginx, err)
	}

	list := c.List()
	if !slices.IsSortedFunc(list, func(a, b domain.Type) int { return strings.Compare(a.ID, b.ID) }) {
		t.Error("List is not sorted by ID")
	}
	// Builtin 6 + blog (redis replaced, portainer-ghost taken over by a
	// type file) + the v2 imports; v3 adds nothing v2 lacks.
	if want := 6 + 1 + 40; len(list) != want {
		t.Errorf("%d types, want %d", len(list), want)
	}

	skipped := c.Skipped()
	var dupOfFile, dupOfV2 int
	for _, s := range skipped {
		if s.Reason == "" || s.Source == "" {
			t.Errorf("incomplete skip %+v", s)
		}
		if strings.Contains(s.Reason, "already defined by "+filepath.Join(dir, "taken.yaml")) {
			dupOfFile++
		}
		if strings.HasPrefix(s.Source, filepath.Join(dir, "templates-v3.json")) &&
			strings.Contains(s.Reason, "already defined by "+filepath.Join(dir, "templates-v2.json")) {
			dupOfV2++
		}
	}
	if dupOfFile != 2 { // portainer-ghost in v2 and v3
		t.Errorf("%d skips for the ID taken by taken.yaml, want 2", dupOfFile)
	}
	if dupOfV2 != 33 { // v3's 34 imports minus Ghost
		t.Errorf("%d v3 templates skipped as already in v2, want 33", dupOfV2)
	}
	if n := strings.Count(logs.String(), "msg=\"catalog: template skipped\""); n != len(skipped) {
		t.Errorf("%d skip log lines for %d skips", n, len(skipped))
	}
	if !strings.Contains(logs.String(), `title="SQL Server Express" reason="platform \"windows\"`) {
		t.Errorf("skip logs lack key/values:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "replaces builtin type") {
		t.Error("replacing a builtin type is not logged")
	}

	skipped[0].Reason = "changed"
	if c.Skipped()[0].Reason == "changed" {
		t.Error("Skipped returned the catalog's slice")
	}
}

func TestLoadDirErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"invalid type file", map[string]string{"a.yaml": "id: a\ntitle: A\nimage: a\nport: 80\n"}, `a.yaml: yaml: line 4: unknown key "port"`},
		{"two files one id", map[string]string{"a.yaml": "id: a\ntitle: A\nimage: a\n", "b.yaml": "id: a\ntitle: B\nimage: b\n"}, `b.yaml: type "a" is already defined by`},
		{"not a templates file", map[string]string{"x.json": `{"foo": 1}`}, `x.json: version: must be "2" or "3"`},
		{"bad json", map[string]string{"x.json": `{`}, "x.json: json: not a Portainer App Templates file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				writeFile(t, dir, name, data)
			}
			_, err := Load(dir, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("Load of a missing dir succeeded")
	}
}

func TestLoadLogsRenames(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "t.json", `{"version": "3", "templates": [
		{"type": 1, "title": "App", "image": "a"}, {"type": 1, "title": "app", "image": "b"}]}`)
	var logs bytes.Buffer
	c, err := Load(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := c.Get("portainer-app-2"); err != nil || b.Image != "b" {
		t.Errorf("portainer-app-2 = %+v, %v", b, err)
	}
	if !strings.Contains(logs.String(), "type renamed") || !strings.Contains(logs.String(), "id=portainer-app-2") {
		t.Errorf("rename not logged:\n%s", logs.String())
	}
}

// TestLoadLogsDroppedFields: every field an imported template goes without
// is logged at start with the template's title and the field, and kept in
// Dropped(); a template whose ID is taken reports nothing of its fields.
func TestLoadLogsDroppedFields(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "fields-v2.json", string(readPortainer(t, "fields-v2.json")))
	writeFile(t, dir, "fields-v2-again.json", string(readPortainer(t, "fields-v2.json")))
	var logs bytes.Buffer
	c, err := Load(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	dropped := c.Dropped()
	if len(dropped) < 10 {
		t.Fatalf("only %d dropped fields: %+v", len(dropped), dropped)
	}
	for _, d := range dropped {
		// fields-v2-again.json sorts first: its templates are the ones
		// imported, the other file's are skipped as taken.
		if !strings.HasPrefix(d.Source, filepath.Join(dir, "fields-v2-again.json")+":templates[") || d.Title == "" || d.Field == "" || d.Reason == "" {
			t.Errorf("dropped field %+v", d)
		}
	}
	if n := strings.Count(logs.String(), `msg="catalog: template field dropped"`); n != len(dropped) {
		t.Errorf("%d log lines for %d dropped fields", n, len(dropped))
	}
	for _, want := range []string{
		`title="Odd Fields" field=cap_add reason="not in Portainer's template format`,
		`title="Media Server" field=labels.traefik.enable`,
		"dropped_fields=" + strconv.Itoa(len(dropped)),
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
	dropped[0].Reason = "changed"
	if c.Dropped()[0].Reason == "changed" {
		t.Error("Dropped returned the catalog's slice")
	}
}
