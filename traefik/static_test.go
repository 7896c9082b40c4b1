package traefik_test

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func readYAML(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return m
}

func dig(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

// TestStaticConfigs checks the two static configurations against what moor
// serves and what docker-compose.yml mounts and sets: a mismatch there (an
// entry point name, the plugin's module path, the endpoint) breaks every
// route without an error in moor.
func TestStaticConfigs(t *testing.T) {
	compose := readYAML(t, "../docker-compose.yml")
	tr := dig(compose, "services", "traefik")
	moor := dig(compose, "services", "moor")
	if tr == nil || moor == nil {
		t.Fatal("docker-compose.yml lacks the traefik or moor service")
	}
	entry := strings.Join(toStrings(dig(tr, "entrypoint")), " ")
	if !strings.Contains(entry, "/etc/moor/traefik-$${MOOR_TRAEFIK_MODE}.yml") || !strings.Contains(entry, "@MOOR_PROVIDER_TOKEN@") {
		t.Errorf("traefik's entrypoint does not pick traefik-<mode>.yml with the token: %s", entry)
	}
	vols := strings.Join(toStrings(dig(tr, "volumes")), " ")
	if !strings.Contains(vols, "./traefik:/etc/moor") || !strings.Contains(vols, "./traefik/moorprovider:/plugins-local/src/"+moduleName) {
		t.Errorf("traefik's volumes: %s", vols)
	}
	if strings.Contains(vols, "docker.sock") {
		t.Error("Traefik must not get the Docker socket")
	}
	env, _ := dig(moor, "environment").(map[string]any)
	if env["MOOR_PROVIDER_FALLBACK_URL"] != "http://moor:8080" || env["MOOR_TRAEFIK_ENTRYPOINTS"] != "web" {
		t.Errorf("moor's environment: %v", env)
	}

	for _, mode := range []string{"http", "plugin"} {
		file := "traefik-" + mode + ".yml"
		m := readYAML(t, file)
		for _, ep := range []string{"web", "websecure", "postgres"} {
			if dig(m, "entryPoints", ep, "address") == nil {
				t.Errorf("%s: entry point %s missing", file, ep)
			}
		}
		if dig(m, "certificatesResolvers", "letsencrypt", "acme", "storage") == nil {
			t.Errorf("%s: no letsencrypt resolver", file)
		}
		switch mode {
		case "http":
			if dig(m, "providers", "http", "endpoint") != "http://moor:8080/api/v1/traefik/config" ||
				dig(m, "providers", "http", "pollInterval") != "1s" ||
				dig(m, "providers", "http", "headers", "Authorization") != "Bearer @MOOR_PROVIDER_TOKEN@" {
				t.Errorf("%s: http provider: %v", file, dig(m, "providers"))
			}
		case "plugin":
			if dig(m, "experimental", "localPlugins", "moor", "moduleName") != moduleName {
				t.Errorf("%s: local plugin: %v", file, dig(m, "experimental"))
			}
			p := dig(m, "providers", "plugin", "moor")
			if dig(p, "endpoint") != "http://moor:8080/api/v1/traefik/config" || dig(p, "token") != "@MOOR_PROVIDER_TOKEN@" {
				t.Errorf("%s: plugin settings: %v", file, p)
			}
			// Every setting is a field of the plugin's Config.
			settings := map[string]string{}
			for k, v := range p.(map[string]any) {
				settings[k] = v.(string)
			}
			settings["token"] = token
			pp, err := newPlugin(t, settings)
			if err != nil {
				t.Errorf("%s: the plugin refuses its settings: %v", file, err)
			} else {
				pp.Stop()
			}
		}
	}
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
