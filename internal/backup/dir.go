package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/moorhq/moor/internal/domain"
)

// Dir is a Target in a local directory: the object under key "a/b" is the file
// <root>/a/b, mode 0600, in directories of mode 0700.
type Dir struct {
	root string
}

var _ Target = (*Dir)(nil)

// NewDir returns the Target for the directory path, creating it (mode 0700)
// if it is missing.
func NewDir(path string) (*Dir, error) {
	if path == "" {
		return nil, fmt.Errorf("backup directory: empty path: %w", domain.ErrInvalid)
	}
	root, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("backup directory %s: %w", path, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("backup directory: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("backup directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("backup directory %s is not a directory: %w", root, domain.ErrInvalid)
	}
	return &Dir{root: root}, nil
}

// Root returns the directory's absolute path.
func (d *Dir) Root() string { return d.root }

func (d *Dir) path(key string) string { return filepath.Join(d.root, filepath.FromSlash(key)) }

// Put writes the content to a temporary file beside the key's file, syncs it
// and renames it over the key's file, then syncs the directory: a crash leaves
// the old object or the new one, never a part.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	if err := ValidateKey(key); err != nil {
		return err
	}
	path := d.path(key)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(dir, ".put-*.tmp") // mode 0600; dot names are never keys
	if err != nil {
		return fmt.Errorf("backup put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("backup put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("backup put %s: read %d bytes, expected %d: %w", key, n, size, domain.ErrInvalid)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup put %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backup put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("backup put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("backup put %s: %w", key, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get opens the key's file.
func (d *Dir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(key))
	if err != nil {
		return nil, d.fsErr(key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, d.fsErr(key, err)
	}
	return f, nil
}

// Stat describes the key's file.
func (d *Dir) Stat(ctx context.Context, key string) (Object, error) {
	if err := ValidateKey(key); err != nil {
		return Object{}, err
	}
	fi, err := os.Stat(d.path(key))
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return Object{}, d.fsErr(key, err)
	}
	return Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime().UTC()}, nil
}

// Delete removes the key's file. Emptied directories stay.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup delete %s: %w", key, err)
	}
	return nil
}

// List walks the directory for files whose keys start with prefix. Files whose
// names are not valid keys (temporary files, anything put there by hand) are
// left out.
func (d *Dir) List(ctx context.Context, prefix string) ([]Object, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	start := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = d.path(prefix[:i])
	}
	var objs []Object
	err := filepath.WalkDir(start, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if path == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path == start {
			return nil
		}
		if strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(d.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if e.IsDir() {
			// Descend only where keys with the prefix can be.
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) || ValidateKey(key) != nil {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		objs = append(objs, Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime().UTC()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup list %q: %w", prefix, err)
	}
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

func (d *Dir) fsErr(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) || isNotDir(err) {
		return fmt.Errorf("backup %s: %w", key, domain.ErrNotFound)
	}
	return fmt.Errorf("backup %s: %w", key, err)
}

// isNotDir reports a path through a file ("a/b" where "a" is a file): no such object.
func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
