package catalog

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

func FuzzParseType(f *testing.F) {
	names, err := fs.Glob(builtinFS, "builtin/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		data, err := builtinFS.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(fullTypeYAML))
	f.Add([]byte("id: x\ntitle: X\nimage: x\nhealth:\n  test: [NONE]\n  interval: 5\n"))
	f.Add([]byte("id: &a x\ntitle: *a\nimage: x\n---\nid: y\n"))
	f.Add([]byte("{id: x, title: X, image: x, volumes: [{name: d, path: /a/../b}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ty, err := ParseType(data)
		if err != nil {
			return
		}
		if err := Validate(ty); err != nil {
			t.Fatalf("ParseType accepted a type that does not validate: %v\n%s", err, data)
		}
		if ty.Restart == "" || ty.Categories == nil || ty.Ports == nil || ty.Env == nil {
			t.Fatalf("ParseType did not normalize: %+v", ty)
		}
		// A parsed type resolves with no input unless a variable is
		// required and has no default.
		_, _, _ = Resolve(ty, nil, nil)
	})
}

func FuzzImportPortainer(f *testing.F) {
	// One seed per real template rather than whole files: the fuzzer
	// minimizes every input that finds new coverage, and minimizing a
	// 45 KB file takes longer than a whole short fuzzing run.
	for _, name := range append(slices.Clone(portainerFiles), fieldFiles...) {
		var file struct {
			Version   string
			Templates []json.RawMessage
		}
		if err := json.Unmarshal(readPortainer(f, name), &file); err != nil {
			f.Fatal(err)
		}
		for _, tpl := range file.Templates {
			f.Add([]byte(`{"version": "` + file.Version + `", "templates": [` + string(tpl) + `]}`))
		}
	}
	f.Add([]byte(`{"version": "2", "templates": [{"type": 1, "title": "A", "image": "a", "ports": ["1:2/udp"], "command": "a 'b c'",
		"env": [{"name": "X", "select": [{"value": "v", "default": true}]}], "volumes": [{"container": "/a", "bind": "/b"}]}]}`))
	f.Add([]byte(`{"version": "3", "templates": [{"type": 1, "title": "A", "image": "a"}, {"type": 1, "title": "A", "image": "a"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		types, skipped, err := ImportPortainer(data, "f.json")
		if err != nil {
			if types != nil || skipped != nil {
				t.Fatal("results returned along with an error")
			}
			return
		}
		ids := map[string]bool{}
		for _, ty := range types {
			if err := Validate(ty); err != nil {
				t.Fatalf("imported type does not validate: %v", err)
			}
			if ids[ty.ID] || !strings.HasPrefix(ty.ID, "portainer-") {
				t.Fatalf("bad or repeated id %q", ty.ID)
			}
			ids[ty.ID] = true
		}
		for _, s := range skipped {
			if s.Reason == "" || !strings.HasPrefix(s.Source, "f.json:templates[") {
				t.Fatalf("incomplete skip %+v", s)
			}
		}
		r, _ := importPortainer(data, "f.json")
		if len(r.dropped) != len(r.types) {
			t.Fatalf("%d dropped lists for %d types", len(r.dropped), len(r.types))
		}
		for _, ds := range r.dropped {
			for _, d := range ds {
				if d.Field == "" || d.Reason == "" || !strings.HasPrefix(d.Source, "f.json:templates[") {
					t.Fatalf("incomplete dropped field %+v", d)
				}
			}
		}
	})
}
