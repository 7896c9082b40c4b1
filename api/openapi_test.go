package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPI: the document is valid OpenAPI 3.0, documents every route of
// the table with its role, and documents nothing else.
func TestOpenAPI(t *testing.T) {
	b, err := json.Marshal(OpenAPI("test"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.method + " " + rt.path
		seen[key] = true
		item := doc.Paths.Find(rt.path)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("%s is not documented (add it to ops in openapi.go)", key)
			continue
		}
		o := item.GetOperation(rt.method)
		if role, _ := o.Extensions["x-moor-role"].(string); role != string(rt.role) {
			t.Errorf("%s: documented role %q, the table says %q", key, role, rt.role)
		}
	}
	for key := range ops {
		if !seen[key] {
			t.Errorf("%s is documented but not served", key)
		}
	}
	// Components come from the domain types as encoding/json writes them.
	c := doc.Components.Schemas["Container"]
	if c == nil || c.Value.Properties["desired_state"] == nil || c.Value.Properties["Spec"] != nil || c.Value.Properties["spec"] != nil {
		t.Errorf("Container schema: %+v", c)
	}
	if !strings.Contains(string(b), `"operationId": "postContainersNameStop"`) && !strings.Contains(string(b), `"operationId":"postContainersNameStop"`) {
		t.Error("operation ids are not derived from the paths")
	}
}
