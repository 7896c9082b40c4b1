package provider

import (
	"regexp"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

// safeRule is every rule Build may write: matchers of [a-z0-9-.] names and
// a path of [a-z0-9-/], joined by || and &&.
var safeRule = regexp.MustCompile("^\\(?(Host|HostSNI)\\(`[a-z0-9.-]+`\\)( \\|\\| (Host|HostSNI)\\(`[a-z0-9.-]+`\\))*\\)?( && PathPrefix\\(`/[a-z0-9/-]+`\\))?$")

// FuzzRuleInjection: whatever a name, alias or path holds, Build either
// refuses it or writes only safe rules, and never lets it reach another
// container's router.
func FuzzRuleInjection(f *testing.F) {
	for _, s := range []string{"blog", "x`) || Host(`*", "a\"b", "a'b", "a||b", "*", "ünicode", "UPPER", "/a) && Path(`/", "a.b.c"} {
		f.Add(s, s, "/"+s)
	}
	f.Fuzz(func(t *testing.T, name, alias, path string) {
		c := ctr(name, domain.StatusRunning, running("10.0.0.1"), &domain.Routing{Aliases: []string{alias}, Path: path})
		other := ctr("other", domain.StatusRunning, running("10.0.0.2"), nil)
		cfg, err := Build([]domain.Container{c, other}, plain)
		if err != nil {
			return
		}
		for n, r := range cfg.HTTP.Routers {
			if n == UnknownRouter {
				continue
			}
			if !safeRule.MatchString(r.Rule) {
				t.Fatalf("router %q has an unsafe rule %q", n, r.Rule)
			}
		}
		if r := cfg.HTTP.Routers["other"]; r == nil || r.Rule != "Host(`other.moor.localhost`)" {
			t.Fatalf("other's router changed: %+v", r)
		}
		if strings.ContainsAny(name+alias+path, "`\"'|&*()") {
			t.Fatalf("Build accepted %q %q %q", name, alias, path)
		}
	})
}
