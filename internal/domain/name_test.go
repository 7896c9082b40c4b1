package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	good := []string{"a", "0", "web", "my-app-2", strings.Repeat("a", 63), "a-b-c", "9lives"}
	bad := []string{"", "-a", "a-", "A", "Web", "a_b", "a.b", "a b", "a`b", `a"b`, "a'b", "..", "../x", "café",
		"a\x00", strings.Repeat("a", 64), "*", "a||b", "ａ", "a\n"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	for _, n := range bad {
		err := ValidateName(n)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "name" || !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v, want a FieldError on name", n, err)
		}
	}
}

// isLabel is a second, plain implementation of the rule to check the first.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"web", "a-b", "-", "a`b", "ａ", strings.Repeat("z", 64), "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateName(s)
		if (err == nil) != isLabel(s) {
			t.Fatalf("ValidateName(%q) = %v, rule says %v", s, err, isLabel(s))
		}
	})
}

func TestRoleAllows(t *testing.T) {
	cases := []struct {
		have, need Role
		ok         bool
	}{
		{RoleAdmin, RoleViewer, true}, {RoleAdmin, RoleAdmin, true}, {RoleOperator, RoleViewer, true},
		{RoleOperator, RoleAdmin, false}, {RoleViewer, RoleOperator, false}, {"", RoleViewer, false},
		{"root", RoleViewer, false}, {RoleAdmin, "", false},
	}
	for _, c := range cases {
		if got := c.have.Allows(c.need); got != c.ok {
			t.Errorf("%q.Allows(%q) = %v", c.have, c.need, got)
		}
	}
}
