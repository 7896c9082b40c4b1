package dnsserver

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// hostsWriter keeps a dnsmasq --hostsdir directory equal to the snapshot's
// addresses: one file per name, written to a dot-file (dnsmasq ignores
// those) and renamed into place, removed when the name goes. Files whose
// names are not under moor's zones are left alone. What it wrote is
// remembered, so a sync touches only the names that changed; the first sync
// reads the directory (files left by an earlier run are corrected).
type hostsWriter struct {
	dir     string
	zones   []string          // fully qualified, lower-case
	written map[string]string // name -> content, after the first sync
}

func (h *hostsWriter) ours(file string) bool {
	if strings.HasPrefix(file, ".") {
		return false
	}
	for _, z := range h.zones {
		if dns.IsSubDomain(z, dns.Fqdn(file)) {
			return true
		}
	}
	return false
}

func (h *hostsWriter) sync(s *Snapshot) error {
	want := map[string]string{}
	for name, addrs := range s.Hosts() {
		if !h.ours(name) {
			continue
		}
		sort.Strings(addrs)
		var b strings.Builder
		for _, a := range addrs {
			fmt.Fprintf(&b, "%s %s\n", a, name)
		}
		want[name] = b.String()
	}
	if h.written == nil {
		if err := os.MkdirAll(h.dir, 0o755); err != nil {
			return err
		}
		entries, err := os.ReadDir(h.dir)
		if err != nil {
			return err
		}
		h.written = map[string]string{}
		for _, e := range entries {
			if e.IsDir() || !h.ours(e.Name()) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(h.dir, e.Name()))
			if err != nil {
				return err
			}
			h.written[e.Name()] = string(b)
		}
	}
	for name := range h.written {
		if _, keep := want[name]; !keep {
			if err := os.Remove(filepath.Join(h.dir, name)); err != nil && !os.IsNotExist(err) {
				return err
			}
			delete(h.written, name)
		}
	}
	names := make([]string, 0, len(want))
	for n, content := range want {
		if h.written[n] != content {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		tmp := filepath.Join(h.dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(want[name]), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(h.dir, name)); err != nil {
			os.Remove(tmp)
			return err
		}
		h.written[name] = want[name]
	}
	return nil
}
