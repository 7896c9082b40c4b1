package catalog

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/moorhq/moor/internal/domain"
)

// yes and no are the Secret flags of table entries.
var yes, no = ptr(true), ptr(false)

func ptr[T any](v T) *T { return &v }

func TestLooksSecret(t *testing.T) {
	for name, want := range map[string]bool{
		"DB_PASS": true, "MONGO_PASS": true, "ftp_pass": true, "MYSQL_ROOT_PASSWORD": true, "passwd": true,
		"ADMIN_PWD": true, "JWT_SECRET": true, "apiToken": true, "API_KEY": true, "KEYFILE": true,
		"GOOGLE_CREDENTIALS": true, "PRIVATE_URL": true, "SecretKeyBase": true,
		"MODE": false, "PUID": false, "TZ": false, "DB_HOST": false, "USER": false, "PORT": false,
	} {
		if got := LooksSecret(name); got != want {
			t.Errorf("LooksSecret(%q) = %v, want %v", name, got, want)
		}
	}
}

// A Portainer file with each kind of variable the rule tells apart, in
// both formats.
func TestImportSecretsAndGeneration(t *testing.T) {
	env := `[
	  {"name": "API_TOKEN", "label": "API token", "preset": true},
	  {"name": "PRESET_FIXED", "default": "yes", "preset": true},
	  {"name": "PLAIN_PRESET", "preset": true},
	  {"name": "DB_PASS"},
	  {"name": "DB_HOST", "label": "Database host"},
	  {"name": "FTP_PASS"},
	  {"name": "MONGO_PASS"},
	  {"name": "MONGO_URL"},
	  {"name": "ROOT_PASSWORD"},
	  {"name": "HASHED_PASSWORD", "default": "$2y$10$abcdefghijklmnopqrstuu5Y0lV6RRbZ4U0n5QmtK6Ew2LqX1Jxy"},
	  {"name": "SUDO_PASSWORD_HASH"},
	  {"name": "ARGON_HASH", "default": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"},
	  {"name": "OPENVPN_PASSWORD"},
	  {"name": "SMTP_PASSWORD"},
	  {"name": "PASSWORD", "description": "Password of your VPN provider's account"},
	  {"name": "WEB_PASSWORD", "default": "changeme"},
	  {"name": "TZ", "default": "UTC"}
	]`
	type want struct {
		secret, required bool
		generate, hash   string
	}
	wants := map[string]want{
		"API_TOKEN":          {secret: true},                 // preset without a value: what Portainer hides
		"PRESET_FIXED":       {},                             // preset with a value: fixed and public
		"PLAIN_PRESET":       {secret: true},                 // preset without a value, whatever its name
		"DB_PASS":            {secret: true, required: true}, // the password of DB_HOST, a server elsewhere
		"DB_HOST":            {},
		"FTP_PASS":           {secret: true, generate: GeneratePassword}, // the container's own
		"MONGO_PASS":         {secret: true, required: true},             // beside MONGO_URL
		"MONGO_URL":          {},
		"ROOT_PASSWORD":      {secret: true, generate: GeneratePassword},
		"HASHED_PASSWORD":    {secret: true, hash: HashBcrypt}, // the default's format; kept
		"SUDO_PASSWORD_HASH": {secret: true},                   // no format known: the user's
		"ARGON_HASH":         {hash: HashArgon2id},
		"OPENVPN_PASSWORD":   {secret: true, required: true},
		"SMTP_PASSWORD":      {secret: true, required: true},
		"PASSWORD":           {secret: true, required: true}, // the description names a provider
		"WEB_PASSWORD":       {secret: true},                 // a default: no generation
		"TZ":                 {},
	}
	for _, version := range []string{"2", "3"} {
		file := fmt.Sprintf(`{"version": %q, "templates": [{"type": 1, "title": "Kinds", "image": "example/kinds:1", "env": %s}]}`, version, env)
		r, err := importPortainer([]byte(file), "kinds.json")
		if err != nil || len(r.types) != 1 {
			t.Fatalf("v%s: import: %v, skipped %+v", version, err, r.skipped)
		}
		for _, e := range r.types[0].Env {
			w, ok := wants[e.Name]
			if !ok {
				t.Fatalf("unexpected variable %s", e.Name)
			}
			got := want{secret: e.IsSecret(), required: e.Required, generate: e.Generate, hash: e.Hash}
			if got != w {
				t.Errorf("v%s: %s = %+v, want %+v", version, e.Name, got, w)
			}
		}
		if d := r.types[0].Env[9].Default; !strings.HasPrefix(d, "$2y$") {
			t.Errorf("v%s: the hash default was not kept: %q", version, d)
		}
	}
}

// A type file's secret: false wins over the name; generated values cannot
// be made visible.
func TestTypeFileSecretFlag(t *testing.T) {
	ty, err := ParseType([]byte(`
id: s
title: S
image: example/s:1
env:
  - {name: TOKEN_TTL, secret: false, default: "3600"}
  - {name: API_TOKEN}
  - {name: MODE}
  - {name: ADMIN_HASH, hash: bcrypt}
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, true, false, false} {
		if got := ty.Env[i].IsSecret(); got != want {
			t.Errorf("%s: secret %v, want %v", ty.Env[i].Name, got, want)
		}
	}
	for _, bad := range []struct{ env, field string }{
		{`{name: K, generate: hex32, secret: false}`, "env[0].secret"},
		{`{name: H, hash: md5}`, "env[0].hash"},
		{`{name: H, hash: bcrypt, generate: password}`, "env[0].hash"},
	} {
		_, err := ParseType([]byte("id: s\ntitle: S\nimage: example/s:1\nenv:\n  - " + bad.env + "\n"))
		var fe *domain.FieldError
		if !errors.As(err, &fe) || fe.Field != bad.field {
			t.Errorf("%s: err %v, want a field error on %s", bad.env, err, bad.field)
		}
	}
}

func TestResolveLeaveEmptyAndHash(t *testing.T) {
	ty := normalize(domain.Type{ID: "h", Env: []domain.EnvSpec{
		{Name: "SMTP_PASSWORD", Required: true},
		{Name: "DB_PASSWORD", Generate: GeneratePassword},
		{Name: "MODE", Default: "web"},
		{Name: "ADMIN_HASH", Hash: HashBcrypt},
		{Name: "USER_HASH", Hash: HashArgon2id},
	}})
	env, secrets, err := Resolve(ty, map[string]string{"SMTP_PASSWORD": "s", "ADMIN_HASH": "hunter2", "USER_HASH": "pw"},
		[]string{"DB_PASSWORD", "MODE"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := secrets["DB_PASSWORD"]; ok {
		t.Errorf("DB_PASSWORD left empty was generated: %q", secrets["DB_PASSWORD"])
	}
	if _, ok := env["MODE"]; ok {
		t.Errorf("MODE left empty got its default")
	}
	if bcrypt.CompareHashAndPassword([]byte(env["ADMIN_HASH"]), []byte("hunter2")) != nil {
		t.Errorf("ADMIN_HASH = %q, not the bcrypt hash of the password given", env["ADMIN_HASH"])
	}
	var v, m, tm, p int
	var salt, key string
	parts := strings.Split(env["USER_HASH"], "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		t.Fatalf("USER_HASH = %q", env["USER_HASH"])
	}
	fmt.Sscanf(parts[2], "v=%d", &v)
	fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &tm, &p)
	salt, key = parts[4], parts[5]
	rawSalt, _ := base64.RawStdEncoding.DecodeString(salt)
	want := base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("pw"), rawSalt, uint32(tm), uint32(m), uint8(p), 32))
	if v != argon2.Version || key != want {
		t.Errorf("USER_HASH = %q does not verify", env["USER_HASH"])
	}
	// An already hashed value is kept.
	h := "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	if env, _, _ := Resolve(ty, map[string]string{"SMTP_PASSWORD": "s", "ADMIN_HASH": h}, nil); env["ADMIN_HASH"] != h {
		t.Errorf("a bcrypt hash given was hashed again: %q", env["ADMIN_HASH"])
	}
	for _, tc := range []struct {
		input map[string]string
		empty []string
		field string
	}{
		{nil, []string{"SMTP_PASSWORD"}, "env.SMTP_PASSWORD"},                                                   // required
		{map[string]string{"SMTP_PASSWORD": "x", "MODE": "a"}, []string{"MODE"}, "env.MODE"},                    // both
		{map[string]string{"SMTP_PASSWORD": "x"}, []string{"NOPE"}, "env.NOPE"},                                 // undeclared
		{map[string]string{"SMTP_PASSWORD": "x", "ADMIN_HASH": strings.Repeat("a", 73)}, nil, "env.ADMIN_HASH"}, // bcrypt's limit
	} {
		_, _, err := Resolve(ty, tc.input, tc.empty)
		var fe *domain.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%v / empty %v: err %v, want a field error on %s", tc.input, tc.empty, err, tc.field)
		}
	}
}

// What Portainer deploys is imported, not skipped: names Docker takes but
// a shell would not, a repeated variable, over-long texts.
func TestImportKeepsWhatPortainerDeploys(t *testing.T) {
	long := strings.Repeat("é", 5000) // 10,000 bytes
	file := `{"version": "3", "templates": [{"type": 1, "title": "` + strings.Repeat("t", 300) + `", "description": "` + long + `",
	  "image": "example/x:1", "env": [{"name": "VENDOR-ID"}, {"name": "MODE", "default": "a"}, {"name": "MODE", "default": "b"}]}]}`
	r, err := importPortainer([]byte(file), "x.json")
	if err != nil || len(r.types) != 1 {
		t.Fatalf("import: %v, skipped %+v", err, r.skipped)
	}
	ty := r.types[0]
	if len(ty.Title) > maxTitle || len(ty.Description) > maxDescription || !strings.HasSuffix(ty.Description, "…") {
		t.Errorf("title %d bytes, description %d bytes", len(ty.Title), len(ty.Description))
	}
	if len(ty.Env) != 2 || ty.Env[0].Name != "VENDOR-ID" || ty.Env[1].Default != "a" {
		t.Errorf("env = %+v", ty.Env)
	}
	var fields []string
	for _, d := range r.dropped[0] {
		fields = append(fields, d.Field)
	}
	for _, want := range []string{"title", "description", "env[2]"} {
		if !slices.Contains(fields, want) {
			t.Errorf("dropped %v lacks %s", fields, want)
		}
	}
}
