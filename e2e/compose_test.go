package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/moorhq/moor/internal/testenv"
)

// composeProject loads the repository's docker-compose.yml as Compose v2
// does (compose-go is its parser), with env as the shell's environment.
func composeProject(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: types.Mapping(env),
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("moor", true)
	})
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

var composeSecrets = map[string]string{"POSTGRES_PASSWORD": "pw-for-the-test", "MOOR_PROVIDER_TOKEN": "token-for-the-test"}

func serviceNetworks(p *types.Project, svc string) []string {
	var out []string
	for n := range p.Services[svc].Networks {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func serviceEnv(p *types.Project, svc, key string) string {
	if v := p.Services[svc].Environment[key]; v != nil {
		return *v
	}
	return ""
}

// TestComposeFile checks the production compose file as Compose v2 reads
// it: moor and PostgreSQL share a private network that nothing moor deploys
// joins, Traefik is on both, and moor publishes nothing beyond the host's
// loopback unless asked (MOOR_BIND).
func TestComposeFile(t *testing.T) {
	p := composeProject(t, composeSecrets)
	for _, svc := range []string{"postgres", "moor", "traefik"} {
		if _, ok := p.Services[svc]; !ok {
			t.Fatalf("no service %q", svc)
		}
	}
	managed := serviceEnv(p, "moor", "MOOR_NETWORK")
	var managedKey string
	for k, n := range p.Networks {
		if n.Name == managed {
			managedKey = k
		}
	}
	if managedKey == "" {
		t.Fatalf("MOOR_NETWORK=%q is not a network of the file (%v)", managed, p.NetworkNames())
	}
	if got := serviceNetworks(p, "moor"); slices.Contains(got, managedKey) {
		t.Errorf("moor is on %v, which holds the containers it deploys: they could call its API", got)
	}
	if got := serviceNetworks(p, "postgres"); slices.Contains(got, managedKey) {
		t.Errorf("postgres is on %v, which holds the containers moor deploys", got)
	}
	if got := serviceNetworks(p, "traefik"); !slices.Contains(got, managedKey) {
		t.Errorf("traefik is on %v, not on %q where the routed containers are", got, managedKey)
	}
	shared := func(a, b string) bool {
		for _, n := range serviceNetworks(p, a) {
			if slices.Contains(serviceNetworks(p, b), n) {
				return true
			}
		}
		return false
	}
	if !shared("moor", "postgres") {
		t.Errorf("moor (%v) and postgres (%v) share no network: moor cannot reach its database",
			serviceNetworks(p, "moor"), serviceNetworks(p, "postgres"))
	}
	if !shared("moor", "traefik") {
		t.Errorf("moor and traefik share no network: Traefik cannot read its routes or the status pages")
	}
	if u, err := url.Parse(serviceEnv(p, "moor", "MOOR_DATABASE_URL")); err != nil || u.Hostname() != "postgres" {
		t.Errorf("MOOR_DATABASE_URL = %q, want the postgres service", serviceEnv(p, "moor", "MOOR_DATABASE_URL"))
	}
	if u, err := url.Parse(serviceEnv(p, "moor", "MOOR_PROVIDER_FALLBACK_URL")); err != nil || u.Hostname() != "moor" {
		t.Errorf("MOOR_PROVIDER_FALLBACK_URL = %q, want moor as Traefik reaches it", serviceEnv(p, "moor", "MOOR_PROVIDER_FALLBACK_URL"))
	}
	// moor attaches Traefik to every project's network, by a container name
	// that must be Traefik's (not one compose generates).
	if router, name := serviceEnv(p, "moor", "MOOR_ROUTER_CONTAINER"), p.Services["traefik"].ContainerName; router == "" || router != name {
		t.Errorf("MOOR_ROUTER_CONTAINER = %q, traefik's container_name %q: want them set and equal", router, name)
	}
	if v := serviceEnv(p, "moor", "MOOR_EMBEDDED_ROUTER"); v != "false" {
		t.Errorf("MOOR_EMBEDDED_ROUTER = %q: Traefik routes under compose", v)
	}
	if ports := p.Services["postgres"].Ports; len(ports) > 0 {
		t.Errorf("postgres publishes %v", ports)
	}
	moorPorts := p.Services["moor"].Ports
	if len(moorPorts) == 0 {
		t.Fatal("moor publishes no port: the dashboard would be unreachable from the host")
	}
	for _, pt := range moorPorts {
		if pt.HostIP != "127.0.0.1" {
			t.Errorf("moor publishes %d/%s on %q, want loopback by default", pt.Target, pt.Protocol, pt.HostIP)
		}
	}
	// Asked for: MOOR_BIND publishes on that address.
	asked := map[string]string{"MOOR_BIND": "192.0.2.10"}
	for k, v := range composeSecrets {
		asked[k] = v
	}
	for _, pt := range composeProject(t, asked).Services["moor"].Ports {
		if pt.HostIP != "192.0.2.10" {
			t.Errorf("with MOOR_BIND=192.0.2.10 moor publishes %d/%s on %q", pt.Target, pt.Protocol, pt.HostIP)
		}
	}
	// The secrets are required, not defaulted to something guessable.
	if _, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  p.WorkingDir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(p.WorkingDir, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("moor", true) }); err == nil ||
		!strings.Contains(err.Error(), "POSTGRES_PASSWORD") && !strings.Contains(err.Error(), "MOOR_PROVIDER_TOKEN") {
		t.Errorf("without the secrets the file loads (err %v); want an error naming them", err)
	}
}

// TestComposeIsolation stands the compose file's services up as real
// containers on the file's networks, moor from its own image, and checks
// what the networks are for: a container moor deployed cannot connect to
// moor or to PostgreSQL, Traefik (here a stand-in on Traefik's networks)
// reaches moor's status pages and the deployed container, and moor reaches
// its database by the service's name. PostgreSQL itself runs outside Docker
// (the test's server): a relay container takes the postgres service's place.
func TestComposeIsolation(t *testing.T) {
	e := NewEnv(t)
	p := composeProject(t, composeSecrets)
	suffix := randSuffix()
	label := "moor.test.compose=" + suffix
	t.Cleanup(func() {
		if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output(); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f", "-v"}, strings.Fields(string(ids))...)...).Run()
		}
	})

	// The file's networks, under names of this test. The managed one is the
	// Env's (its cleanup removes it and what moor put on it).
	managed := serviceEnv(p, "moor", "MOOR_NETWORK")
	netName := map[string]string{}
	for key, n := range p.Networks {
		if n.Name == managed {
			netName[key] = e.Network
			continue
		}
		netName[key] = "moor-t-" + key + "-" + suffix
		t.Cleanup(func() { removeNetwork("moor-t-"+key+"-"+suffix, 30*time.Second) })
	}
	for _, name := range netName {
		docker(t, "network", "create", "--label", "moor.test=1", "--label", label, name)
	}
	gateway := docker(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", netName[firstNetwork(p, "postgres")])

	// The test's PostgreSQL listens on the host's loopback: relay it to the
	// gateway of postgres's network, where the relay container reaches it.
	dbURL, err := url.Parse(e.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	relayAddr := hostRelay(t, net.JoinHostPort(gateway, "0"), dbURL.Host)

	image := moorImage(t, suffix)
	testImage := testenv.TestImage(t)
	_, file, _, _ := runtime.Caller(0)
	catalog := filepath.Join(filepath.Dir(file), "testdata", "catalog")

	container := map[string]string{}
	run := func(svc string, args ...string) {
		t.Helper()
		nets := serviceNetworks(p, svc)
		name := "moor-t-" + svc + "-" + suffix
		base := []string{"run", "-d", "--name", name, "--label", "moor.test=1", "--label", label,
			"--network", netName[nets[0]], "--network-alias", svc}
		container[svc] = docker(t, append(base, args...)...)
		for _, n := range nets[1:] {
			docker(t, "network", "connect", "--alias", svc, netName[n], name)
		}
	}

	run("postgres", testImage, "-forward", ":5432="+relayAddr)
	// Compose waits for postgres's health check before starting moor.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ := exec.Command("docker", "logs", container["postgres"]).CombinedOutput()
		if strings.Contains(string(out), "forwarding") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the postgres relay did not start: %s", out)
		}
	}

	// moor as the file runs it, with the test's database, network and catalog.
	env := map[string]string{}
	for k, v := range p.Services["moor"].Environment {
		if v != nil {
			env[k] = *v
		}
	}
	dbInside := *dbURL
	dbInside.Host = "postgres:5432"
	env["MOOR_DATABASE_URL"] = dbInside.String()
	env["MOOR_NETWORK"] = e.Network
	env["MOOR_CATALOG_DIR"] = "/catalog"
	env["MOOR_RESYNC"] = "2s"
	// The file's router container, under this test's name for it.
	env["MOOR_ROUTER_CONTAINER"] = "moor-t-traefik-" + suffix
	args := []string{"--tmpfs", "/data", "-v", catalog + ":/catalog:ro"}
	for _, v := range p.Services["moor"].Volumes {
		if v.Type == types.VolumeTypeBind {
			args = append(args, "-v", v.Source+":"+v.Target)
		}
	}
	for _, pt := range p.Services["moor"].Ports {
		if pt.Target == 8080 && pt.Protocol == "tcp" {
			args = append(args, "-p", fmt.Sprintf("%s::%d", pt.HostIP, pt.Target)) // any free host port
		}
	}
	for k, v := range env {
		args = append(args, "-e", k+"="+v)
	}
	// Traefik first, on its networks with its aliases, as compose puts it:
	// moor, which attaches it to the networks it lacks, then finds it there.
	run("traefik", testImage)
	run("moor", append(args, image, "serve")...)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "200", container["moor"]).CombinedOutput()
			t.Logf("moor's logs:\n%s", out)
		}
	})

	published := docker(t, "port", container["moor"], "8080/tcp")
	if !strings.HasPrefix(published, "127.0.0.1:") {
		t.Fatalf("moor's API is published on %q, want loopback only", published)
	}
	m := &Moor{env: e, URL: "http://" + strings.Fields(published)[0]}
	waitHealthy(t, m.URL+"/healthz", 60*time.Second)

	// moor deploys through the database it reaches as "postgres".
	m.Create(map[string]any{"name": "web", "type": "testapp"})
	web := m.WaitStatus("web", "running", 90*time.Second)
	deployed := e.DockerIDs("web")
	if len(deployed) != 1 {
		t.Fatalf("deployed containers of web: %v", deployed)
	}
	moorIP := docker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+netName[firstNetwork(p, "moor")]+"\").IPAddress}}", container["moor"])
	pgIP := docker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+netName[firstNetwork(p, "postgres")]+"\").IPAddress}}", container["postgres"])

	exit := func(in string, args ...string) (int, string) {
		t.Helper()
		out, err := exec.Command("docker", append([]string{"exec", in, "/testapp"}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatalf("docker exec: %v\n%s", err, out)
		}
		return 0, string(out)
	}
	// Within its own network the deployed container connects (so a refusal
	// below is the isolation, not a broken probe).
	if code, out := exit(deployed[0], "-dial", "traefik:8080"); code != 0 {
		t.Fatalf("deployed container cannot reach Traefik on its own network: %s", out)
	}
	for _, target := range []string{"moor:8080", moorIP + ":8080", moorIP + ":5353", "postgres:5432", pgIP + ":5432"} {
		if code, out := exit(deployed[0], "-dial", target); code == 0 {
			t.Errorf("a container moor deployed connects to %s: %s", target, out)
		}
	}
	// Traefik reaches moor and the deployed container.
	if code, out := exit(container["traefik"], "-get", "http://moor:8080/healthz"); code != 0 || !strings.HasPrefix(out, "200") {
		t.Errorf("Traefik -> moor /healthz: exit %d: %s", code, out)
	}
	if code, out := exit(container["traefik"], "-dial", web.InternalIP+":8080"); code != 0 {
		t.Errorf("Traefik cannot reach the deployed container at %s: %s", web.InternalIP, out)
	}
	// A project's container is on a network of its own, which moor
	// connected Traefik to (MOOR_ROUTER_CONTAINER).
	if code, out := m.Do("POST", "/api/v1/projects", map[string]any{"name": "shop"}); code != 201 {
		t.Fatalf("create project: %d %s", code, out)
	}
	if code, out := m.Do("POST", "/api/v1/projects/shop/containers", map[string]any{"name": "web", "type": "testapp"}); code != 202 {
		t.Fatalf("create shop/web: %d %s", code, out)
	}
	shopWeb := m.WaitStatus("shop/web", "running", 90*time.Second)
	if code, out := exit(container["traefik"], "-dial", shopWeb.InternalIP+":8080"); code != 0 {
		t.Errorf("Traefik cannot reach shop/web at %s on its project's network: %s", shopWeb.InternalIP, out)
	}
	if code, out := m.Do("DELETE", "/api/v1/projects/shop/containers/web", nil); code != 202 && code != 200 {
		t.Fatalf("remove shop/web: %d %s", code, out)
	}
	if code, out := m.Do("POST", "/api/v1/containers/web/stop", nil); code != 202 && code != 200 {
		t.Fatalf("stop: %d %s", code, out)
	}
	m.WaitStatus("web", "stopped", 60*time.Second)
	host := "web." + serviceEnv(p, "moor", "MOOR_HOST_ZONE")
	code, out := exit(container["traefik"], "-get", "http://moor:8080/_moor/unavailable/", "-host", host)
	if code != 0 || !strings.HasPrefix(out, "503") || !strings.Contains(out, "stopped") {
		t.Errorf("Traefik -> moor's status page for %s: exit %d: %s", host, code, out)
	}
}

// firstNetwork is a service's first network (by name) in the file.
func firstNetwork(p *types.Project, svc string) string { return serviceNetworks(p, svc)[0] }

// moorImage builds moor (static) into a FROM scratch image, as
// deploy/Dockerfile does but without a base image to pull.
func moorImage(t *testing.T, suffix string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "moor"), "./cmd/moor")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build moor: %v\n%s", err, out)
	}
	dockerfile := "FROM scratch\nCOPY moor /moor\nENV MOOR_HTTP_ADDR=0.0.0.0:8080 MOOR_DATA_DIR=/data\nENTRYPOINT [\"/moor\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "moor-t-image:" + suffix
	docker(t, "build", "-q", "--label", "moor.test=1", "-t", tag, dir)
	t.Cleanup(func() { dockerQuiet("rmi", "-f", tag) })
	return tag
}

// hostRelay relays TCP connections from listen (on a Docker network's
// gateway, which containers on it reach) to target, until the test ends.
func hostRelay(t *testing.T, listen, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer down.Close()
				up, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, down)
				io.Copy(down, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// waitHealthy waits until url answers 200.
func waitHealthy(t *testing.T, url string, patience time.Duration) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		code := 0
		resp, err := http.Get(url)
		if err == nil {
			code = resp.StatusCode
			resp.Body.Close()
			if code == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 in %s (last: %d %v)", url, patience, code, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestImageBuildContext: what `docker build` of the repository sends, as
// the engine sees it (.dockerignore applied): the sources moor embeds, and
// not the development database and key in .moor/, binaries or tests.
func TestImageBuildContext(t *testing.T) {
	testenv.RequireDocker(t)
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	// A file where `make run` keeps secret.key, so the test has something to miss.
	probe := filepath.Join(root, ".moor", "probe-"+randSuffix())
	if _, err := os.Stat(filepath.Dir(probe)); os.IsNotExist(err) {
		t.Cleanup(func() { os.Remove(filepath.Dir(probe)) }) // made here: gone again (after the probe)
	}
	if err := os.MkdirAll(filepath.Dir(probe), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(probe, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(probe) })

	tag := "moor-t-context:" + randSuffix()
	build := exec.Command("docker", "build", "-q", "--label", "moor.test=1", "-t", tag, "-f", "-", root)
	build.Stdin = strings.NewReader("FROM scratch\nCOPY . /ctx/\n")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { dockerQuiet("rmi", "-f", tag) })
	id := docker(t, "create", "--label", "moor.test=1", tag, "/none")
	t.Cleanup(func() { dockerQuiet("rm", "-f", id) })
	out, err := exec.Command("docker", "export", id).Output()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		files[strings.TrimPrefix(h.Name, "ctx/")] = true
	}
	for _, want := range []string{"go.mod", "go.sum", "cmd/moor/main.go", "web/static/app.js", "migrations/0001_core.up.sql",
		"internal/catalog/builtin/testapp.yaml", "deploy/Dockerfile"} {
		if !files[want] {
			t.Errorf("the build context lacks %s", want)
		}
	}
	for f := range files {
		if strings.HasPrefix(f, ".moor") || strings.HasPrefix(f, ".git/") || strings.HasPrefix(f, "bin/") ||
			strings.HasSuffix(f, "_test.go") || strings.Contains(f, "testdata/") {
			t.Errorf("the build context holds %s", f)
		}
	}
}
