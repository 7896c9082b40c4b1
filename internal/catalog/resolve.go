package catalog

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/moorhq/moor/internal/domain"
)

// Resolve checks a user's environment values against t and completes them:
// defaults are applied and generated values created. Values of specs marked
// Secret or Generate are returned in secrets (stored encrypted, shown only
// through the credentials endpoint), the others in env. Variables that end
// up empty are left out of both maps: Docker then does not set them at all.
//
// An empty input value counts as not given, because forms send empty
// fields: the default or a generated value takes its place. Names in
// leaveEmpty are set to nothing instead (no default, nothing generated),
// unless the variable is required. A variable with a Hash format gets the
// hash of the password given (a value already in that format is kept).
//
// The first broken rule is returned as a *domain.FieldError with the field
// "env.NAME" (unknown names first, in sorted order, then t.Env in order); it
// unwraps to domain.ErrInvalid. Generated values are moor's own and are not
// checked against a pattern.
func Resolve(t domain.Type, input map[string]string, leaveEmpty []string) (env map[string]string, secrets map[string]string, err error) {
	declared := make(map[string]bool, len(t.Env))
	for _, s := range t.Env {
		declared[s.Name] = true
	}
	keys := make([]string, 0, len(input)+len(leaveEmpty))
	for k := range input {
		keys = append(keys, k)
	}
	keys = append(keys, leaveEmpty...)
	slices.Sort(keys)
	for _, k := range keys {
		if !declared[k] {
			return nil, nil, domain.Invalid("env."+k, "is not declared by type %s", t.ID)
		}
	}
	env, secrets = map[string]string{}, map[string]string{}
	for _, s := range t.Env {
		var v string
		if slices.Contains(leaveEmpty, s.Name) {
			if input[s.Name] != "" {
				return nil, nil, domain.Invalid("env."+s.Name, "is both given and left empty")
			}
			if s.Required {
				return nil, nil, domain.Invalid("env."+s.Name, "is required; it cannot be left empty")
			}
		} else if v, err = resolveValue(s, input[s.Name]); err != nil {
			return nil, nil, err
		}
		switch {
		case v == "":
		case s.IsSecret():
			secrets[s.Name] = v
		default:
			env[s.Name] = v
		}
	}
	return env, secrets, nil
}

// resolveValue picks the value of one variable: the user's, else a
// generated one, else the default.
func resolveValue(s domain.EnvSpec, given string) (string, error) {
	field := "env." + s.Name
	switch {
	case given != "":
		if err := checkGiven(field, s, given); err != nil {
			return "", err
		}
		return hashPassword(field, s.Hash, given)
	case s.Generate != "":
		v, err := generate(s.Generate)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return v, nil
	case s.Default != "":
		return s.Default, nil
	case s.Required:
		return "", domain.Invalid(field, "is required")
	}
	return "", nil
}

func checkGiven(field string, s domain.EnvSpec, v string) error {
	if err := checkValue(field, v); err != nil {
		return err
	}
	if len(s.Choices) > 0 && !slices.Contains(s.Choices, v) {
		return domain.Invalid(field, "must be one of %s", strings.Join(s.Choices, ", "))
	}
	if s.Pattern != "" {
		re, err := compilePattern(s.Pattern)
		if err != nil {
			// Validate catches this for catalog types; a hand-made type
			// still must not let any value through.
			return domain.Invalid(field, "has an invalid pattern in its type: %v", err)
		}
		if !re.MatchString(v) {
			return domain.Invalid(field, "must match the pattern %s", s.Pattern)
		}
	}
	return nil
}

// generate makes a random value. Password: 18 random bytes as 24 URL-safe
// characters, so it survives shells, URLs and connection strings unquoted.
// Hex32: 16 random bytes as 32 hex digits, the form encryption keys expect.
func generate(kind string) (string, error) {
	var n int
	switch kind {
	case GeneratePassword:
		n = 18
	case GenerateHex32:
		n = 16
	default:
		return "", domain.Invalid("generate", "unknown generator %q", kind)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate %s: %w", kind, err)
	}
	if kind == GenerateHex32 {
		return hex.EncodeToString(b), nil
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashPassword returns v in the format the variable asks for (as is when
// there is none, or when v already is such a hash).
func hashPassword(field, format, v string) (string, error) {
	if format == "" || hashFormat(v) == format {
		return v, nil
	}
	switch format {
	case HashBcrypt:
		if len(v) > 72 {
			return "", domain.Invalid(field, "must be at most 72 bytes: bcrypt reads no further")
		}
		h, err := bcrypt.GenerateFromPassword([]byte(v), bcrypt.DefaultCost)
		if err != nil {
			return "", fmt.Errorf("%s: bcrypt: %w", field, err)
		}
		return string(h), nil
	case HashArgon2id:
		// RFC 9106's second recommended option (64 MiB, 3 passes), in the
		// PHC string format that argon2 libraries read.
		const memory, passes, lanes, keyLen = 64 * 1024, 3, 4, 32
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("%s: argon2id salt: %w", field, err)
		}
		key := argon2.IDKey([]byte(v), salt, passes, memory, lanes, keyLen)
		b64 := base64.RawStdEncoding
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memory, passes, lanes,
			b64.EncodeToString(salt), b64.EncodeToString(key)), nil
	}
	return "", domain.Invalid(field, "has an unknown hash format %q in its type", format)
}
