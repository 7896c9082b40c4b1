package catalog

import (
	"regexp"
	"slices"
	"strings"

	"github.com/moorhq/moor/internal/domain"
)

// Which variables are secret, and which moor may generate.
//
// Secret (sealed, shown only by the credentials endpoint): declared
// `secret: true`, generated, a Portainer `preset` without a value (which
// Portainer hides while the user types it), or named like a
// credential: the name contains one of secretWords, in any position and
// case. A type file's explicit `secret: false` wins over the name.
//
// Generated (Portainer imports only; a type file says `generate:` itself):
// a password the container itself will check, that is a password name
// (passwordWords) with no default, and none of:
//   - a hash (the name contains HASH): a random plain string is no hash,
//     and would override a working default;
//   - a credential of an outside service: the name or description names
//     one (outsideWords, outsideDescRE), or the template gives the host it
//     belongs to (DB_PASS beside DB_HOST: the password of a server moor
//     did not deploy with it). Those are required instead: a random value
//     can never be right.

// secretWords make a variable secret wherever they appear in its name.
var secretWords = []string{"PASS", "PWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "PRIVATE"}

// LooksSecret reports whether a variable's name looks like a credential.
func LooksSecret(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// passwordWords mark a password (as opposed to a key or token, which have
// formats of their own).
var passwordWords = []string{"PASSWORD", "PASSWD", "PASS", "PWD"}

func isPasswordName(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range passwordWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func isHashName(name string) bool { return strings.Contains(strings.ToUpper(name), "HASH") }

// outsideWords in a name point at an account elsewhere.
var outsideWords = []string{
	"SMTP", "MAIL", "IMAP", "POP3", "VPN", "WIREGUARD", "PROVIDER", "PROXY", "REMOTE", "UPSTREAM",
	"RELAY", "S3", "AWS", "AZURE", "GCP", "GOOGLE", "OAUTH", "OIDC", "LDAP", "SSO", "CLOUDFLARE",
	"DUCKDNS", "PLEX", "USENET", "NZB", "DEBRID", "INDEXER", "REGISTRY", "DOCKERHUB", "GITHUB",
	"GITLAB", "TELEGRAM", "DISCORD", "SLACK", "TWILIO", "SPOTIFY",
}

// outsideDescRE finds, in a variable's description, an account elsewhere.
var outsideDescRE = regexp.MustCompile(`(?i)\b(provider|smtp|vpn|subscription|premium|mail server|e-?mail account|existing)\b`)

// hostSuffixes name the variable that says where a service is.
var hostSuffixes = []string{"HOST", "HOSTNAME", "SERVER", "ADDR", "ADDRESS", "URL", "URI", "ENDPOINT"}

// outsideCredential reports whether env[i] is the credential of a service
// elsewhere: by its name, its description, or a host variable beside it.
func outsideCredential(env []domain.EnvSpec, i int) bool {
	s := env[i]
	n := strings.ToUpper(s.Name)
	for _, w := range outsideWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	if outsideDescRE.MatchString(s.Description) || outsideDescRE.MatchString(s.Label) {
		return true
	}
	// DB_PASS beside DB_HOST; WORDPRESS_DB_PASSWORD beside WORDPRESS_DB_HOST.
	prefix := n
	for _, w := range passwordWords {
		if j := strings.LastIndex(n, w); j >= 0 {
			prefix = n[:j]
			break
		}
	}
	for j, o := range env {
		if j == i {
			continue
		}
		other := strings.ToUpper(o.Name)
		rest, ok := strings.CutPrefix(other, prefix)
		if !ok {
			continue
		}
		// A host that is a pattern ("%": MySQL's MYSQL_ROOT_HOST, from
		// where root may connect) is the container's own setting.
		if slices.Contains(hostSuffixes, rest) && (o.Default == "" || domain.ValidateHost("", o.Default) == nil) {
			return true
		}
	}
	return false
}

// hashFormat reads the format of a password hash from an example value
// (a template's default): "bcrypt", "argon2id" or "".
func hashFormat(v string) string {
	switch {
	case strings.HasPrefix(v, "$2a$"), strings.HasPrefix(v, "$2b$"), strings.HasPrefix(v, "$2y$"):
		return HashBcrypt
	case strings.HasPrefix(v, "$argon2id$"):
		return HashArgon2id
	}
	return ""
}

// decideSecrets settles each variable's Secret flag where the type left it
// open: by the name.
func decideSecrets(env []domain.EnvSpec) {
	for i := range env {
		if env[i].Secret == nil {
			v := env[i].Generate != "" || LooksSecret(env[i].Name)
			env[i].Secret = &v
		}
	}
}
