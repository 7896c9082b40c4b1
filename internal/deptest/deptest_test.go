// Package deptest holds the import rules of moor's architecture: the core
// speaks domain types and never reaches an adapter; each third-party
// backend library lives in the one package that wraps it. A change that
// breaks a rule fails here, before it spreads.
package deptest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/moorhq/moor"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, patterns...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func hasPrefix(path string, prefixes ...string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// TestCoreUsesNoAdapter: the core and the edges that serve it (the API, the
// DNS server, the Traefik provider) depend on neither the store nor the
// engine adapter, nor on what those wrap; only cmd/moor wires them.
func TestCoreUsesNoAdapter(t *testing.T) {
	core := []string{
		module + "/api", module + "/dnsserver", module + "/provider", module + "/web",
		module + "/internal/lifecycle", module + "/internal/reconciler", module + "/internal/catalog",
		module + "/internal/auth", module + "/internal/webhook", module + "/internal/metrics", module + "/internal/uninstall",
	}
	forbidden := []string{
		module + "/internal/store", module + "/internal/engine",
		"github.com/jackc/pgx/v5", "github.com/moby/moby", "github.com/docker/docker",
	}
	for _, p := range list(t, core...) {
		for _, f := range forbidden {
			for _, d := range p.Deps {
				if hasPrefix(d, f) {
					t.Errorf("%s depends on %s: declare an interface in domain terms where it is used and wire the adapter in cmd/moor", p.ImportPath, f)
					break
				}
			}
		}
	}
}

// TestDomainIsStandardLibraryOnly: every package may depend on the domain,
// so it depends on nothing but the standard library.
func TestDomainIsStandardLibraryOnly(t *testing.T) {
	for _, p := range list(t, module+"/internal/domain") {
		for _, d := range p.Deps {
			if !strings.Contains(strings.Split(d, "/")[0], ".") {
				continue // standard library
			}
			t.Errorf("internal/domain depends on %s", d)
		}
	}
}

// TestBackendLibrariesStayInTheirAdapter: a third-party library that is a
// backend is imported by the one package that wraps it (tests, benchmarks
// and test helpers aside).
func TestBackendLibrariesStayInTheirAdapter(t *testing.T) {
	owner := map[string]string{
		"github.com/jackc/pgx/v5":       module + "/internal/store",
		"github.com/moby/moby":          module + "/internal/engine",
		"github.com/containerd/errdefs": module + "/internal/engine",
		"github.com/miekg/dns":          module + "/dnsserver",
		"github.com/traefik/genconf":    module + "/provider",
	}
	exempt := []string{module + "/internal/testenv", module + "/bench", module + "/e2e"}
	for _, p := range list(t, module+"/...") {
		if hasPrefix(p.ImportPath, exempt...) {
			continue
		}
		for _, imp := range p.Imports {
			for lib, pkg := range owner {
				if hasPrefix(imp, lib) && !hasPrefix(p.ImportPath, pkg) {
					t.Errorf("%s imports %s: only %s may", p.ImportPath, imp, pkg)
				}
			}
		}
	}
}

// TestClientIsOnlyAClient: the API client that the command line uses
// speaks HTTP and domain types only: none of the server's parts or
// backends reach the client commands, and the command-line library stays
// in cmd/moor.
func TestClientIsOnlyAClient(t *testing.T) {
	forbidden := []string{
		module + "/api", module + "/internal/store", module + "/internal/engine", module + "/internal/lifecycle",
		module + "/internal/reconciler", module + "/internal/catalog", module + "/provider", module + "/dnsserver",
		"github.com/jackc/pgx/v5", "github.com/moby/moby", "github.com/spf13/cobra",
	}
	for _, p := range list(t, module+"/internal/client") {
		for _, d := range p.Deps {
			if hasPrefix(d, forbidden...) {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
	}
	for _, p := range list(t, module+"/...") {
		for _, imp := range p.Imports {
			if hasPrefix(imp, "github.com/spf13/cobra", "github.com/spf13/pflag") && p.ImportPath != module+"/cmd/moor" {
				t.Errorf("%s imports %s: only cmd/moor may", p.ImportPath, imp)
			}
		}
	}
}
