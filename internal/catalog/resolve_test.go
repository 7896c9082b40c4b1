package catalog

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

func resolveType() domain.Type {
	return domain.Type{
		ID: "app",
		Env: []domain.EnvSpec{
			{Name: "MODE", Choices: []string{"web", "worker"}, Default: "web"},
			{Name: "PORT", Pattern: `[0-9]{1,5}`},
			{Name: "USER", Required: true},
			{Name: "GREETING", Default: "hello"},
			{Name: "API_KEY", Secret: yes},
			{Name: "PASSWORD", Generate: GeneratePassword},
			{Name: "ENC_KEY", Generate: GenerateHex32, Secret: yes},
			{Name: "OPTIONAL"},
		},
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name        string
		input       map[string]string
		env         map[string]string
		secrets     map[string]string // "*pw" / "*hex": any generated value of that kind
		field, rule string
	}{
		{
			name:    "defaults and generated values",
			input:   map[string]string{"USER": "ann"},
			env:     map[string]string{"MODE": "web", "USER": "ann", "GREETING": "hello"},
			secrets: map[string]string{"PASSWORD": "*pw", "ENC_KEY": "*hex"},
		},
		{
			name: "everything given",
			input: map[string]string{
				"MODE": "worker", "PORT": "8080", "USER": "ann", "GREETING": "hi\tthere\nfriend",
				"API_KEY": "k", "PASSWORD": "p", "ENC_KEY": "e", "OPTIONAL": "o",
			},
			env:     map[string]string{"MODE": "worker", "PORT": "8080", "USER": "ann", "GREETING": "hi\tthere\nfriend", "OPTIONAL": "o"},
			secrets: map[string]string{"API_KEY": "k", "PASSWORD": "p", "ENC_KEY": "e"},
		},
		{
			name:    "empty means not given",
			input:   map[string]string{"USER": "ann", "MODE": "", "PASSWORD": "", "OPTIONAL": ""},
			env:     map[string]string{"MODE": "web", "USER": "ann", "GREETING": "hello"},
			secrets: map[string]string{"PASSWORD": "*pw", "ENC_KEY": "*hex"},
		},
		{name: "nil input", input: nil, field: "env.USER", rule: "is required"},
		{name: "required empty", input: map[string]string{"USER": ""}, field: "env.USER", rule: "is required"},
		{name: "unknown key", input: map[string]string{"USER": "a", "NOPE": "x"}, field: "env.NOPE", rule: "is not declared by type app"},
		{name: "unknown keys sorted", input: map[string]string{"ZZ": "x", "AA": "x"}, field: "env.AA", rule: "is not declared by type app"},
		{name: "not a choice", input: map[string]string{"USER": "a", "MODE": "cron"}, field: "env.MODE", rule: "must be one of web, worker"},
		{name: "pattern", input: map[string]string{"USER": "a", "PORT": "80a"}, field: "env.PORT", rule: "must match the pattern [0-9]{1,5}"},
		{name: "pattern is anchored", input: map[string]string{"USER": "a", "PORT": "123456"}, field: "env.PORT", rule: "must match the pattern"},
		{name: "too long", input: map[string]string{"USER": strings.Repeat("a", 4097)}, field: "env.USER", rule: "at most 4096 bytes"},
		{name: "4096 is fine", input: map[string]string{"USER": strings.Repeat("a", 4096)},
			env:     map[string]string{"MODE": "web", "USER": strings.Repeat("a", 4096), "GREETING": "hello"},
			secrets: map[string]string{"PASSWORD": "*pw", "ENC_KEY": "*hex"}},
		{name: "NUL", input: map[string]string{"USER": "a\x00b"}, field: "env.USER", rule: "control characters"},
		{name: "carriage return", input: map[string]string{"USER": "a\rb"}, field: "env.USER", rule: "control characters"},
		{name: "escape", input: map[string]string{"USER": "a\x1b[2Jb"}, field: "env.USER", rule: "control characters"},
		{name: "C1 control", input: map[string]string{"USER": "a\u0085b"}, field: "env.USER", rule: "control characters"},
		{name: "invalid UTF-8", input: map[string]string{"USER": "a\xffb"}, field: "env.USER", rule: "UTF-8"},
		{name: "secret checked too", input: map[string]string{"USER": "a", "API_KEY": "x\x00"}, field: "env.API_KEY", rule: "control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, secrets, err := Resolve(resolveType(), tt.input, nil)
			if tt.field != "" {
				assertFieldError(t, err, tt.field, tt.rule)
				if env != nil || secrets != nil {
					t.Error("maps returned along with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if !reflect.DeepEqual(env, tt.env) {
				t.Errorf("env = %v, want %v", env, tt.env)
			}
			checkSecrets(t, secrets, tt.secrets)
		})
	}
}

func checkSecrets(t *testing.T, got, want map[string]string) {
	t.Helper()
	pw := regexp.MustCompile(`^[A-Za-z0-9_-]{24}$`)
	hex := regexp.MustCompile(`^[0-9a-f]{32}$`)
	if len(got) != len(want) {
		t.Errorf("secrets = %v, want %v", got, want)
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("secret %s missing", k)
		case w == "*pw" && !pw.MatchString(g):
			t.Errorf("secret %s = %q, want 24 URL-safe characters", k, g)
		case w == "*hex" && !hex.MatchString(g):
			t.Errorf("secret %s = %q, want 32 hex digits", k, g)
		case w != "*pw" && w != "*hex" && g != w:
			t.Errorf("secret %s = %q, want %q", k, g, w)
		}
	}
}

func TestResolveGeneratesFreshValues(t *testing.T) {
	ty := resolveType()
	in := map[string]string{"USER": "a"}
	_, s1, err1 := Resolve(ty, in, nil)
	_, s2, err2 := Resolve(ty, in, nil)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if s1["PASSWORD"] == s2["PASSWORD"] || s1["ENC_KEY"] == s2["ENC_KEY"] {
		t.Error("generated values repeat")
	}
}

func TestResolveDoesNotTouchInput(t *testing.T) {
	in := map[string]string{"USER": "a"}
	if _, _, err := Resolve(resolveType(), in, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, map[string]string{"USER": "a"}) {
		t.Errorf("input changed: %v", in)
	}
}

func TestResolveBuiltinDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := c.Get("postgres")
	if err != nil {
		t.Fatal(err)
	}
	env, secrets, err := Resolve(pg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if env["POSTGRES_USER"] != "postgres" || env["POSTGRES_DB"] != "postgres" {
		t.Errorf("env = %v", env)
	}
	checkSecrets(t, secrets, map[string]string{"POSTGRES_PASSWORD": "*pw"})
	if _, _, err := Resolve(pg, map[string]string{"POSTGRES_USER": "Robert'); DROP"}, nil); err == nil {
		t.Error("POSTGRES_USER pattern not applied")
	}
}
