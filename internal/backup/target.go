package backup

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// Target is a place archives are stored. Keys are validated by ValidateKey.
type Target interface {
	// Put stores r's content under key, replacing what was there. size is the
	// length of the content, or -1 when unknown. When Put fails or ctx ends
	// before it is done, nothing is stored under key (what was there stays).
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object under key; an error wraps domain.ErrNotFound when
	// there is none.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the object under key; an error wraps domain.ErrNotFound
	// when there is none.
	Stat(ctx context.Context, key string) (Object, error)
	// Delete removes the object under key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
}

// Object describes a stored object.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// MaxKeyLen is the longest key a target accepts.
const MaxKeyLen = 512

// ValidateKey checks a key: 1 to MaxKeyLen characters of [a-z0-9._/-],
// segments separated by single slashes, no segment empty or starting with a
// dot (so no "." or "..", and no hidden or temporary files), no leading or
// trailing slash. Errors wrap domain.ErrInvalid.
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("backup key %q: must be 1 to %d characters: %w", key, MaxKeyLen, domain.ErrInvalid)
	}
	if err := checkChars(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" {
			return fmt.Errorf("backup key %q: empty segment (leading, trailing or double slash): %w", key, domain.ErrInvalid)
		}
		if seg[0] == '.' {
			return fmt.Errorf("backup key %q: a segment starts with a dot: %w", key, domain.ErrInvalid)
		}
	}
	return nil
}

// validatePrefix checks a List prefix: empty, or the start of a valid key.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyLen || prefix[0] == '/' || strings.Contains(prefix, "//") || strings.Contains(prefix, "/.") || prefix[0] == '.' {
		return fmt.Errorf("backup key prefix %q: not the start of a valid key: %w", prefix, domain.ErrInvalid)
	}
	return checkChars(prefix)
}

func checkChars(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '/' && c != '-' {
			return fmt.Errorf("backup key %q: character %q at %d is not one of [a-z0-9._/-]: %w", s, c, i, domain.ErrInvalid)
		}
	}
	return nil
}

// ctxReader fails reads once ctx is done, so a Put whose caller gives up stops
// consuming its source and fails rather than storing a partial object.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
