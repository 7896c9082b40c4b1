package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// defaultURL is where `make run` serves (MOOR_HTTP_ADDR's default).
const defaultURL = "http://127.0.0.1:8080"

// clientConfig is what the client commands need: where moor is and the
// key to show it. It is read from MOOR_URL and MOOR_API_KEY, else from the
// file `moor login` writes; a variable wins over the file.
type clientConfig struct {
	URL    string `json:"url"`
	APIKey string `json:"api_key"`
	// Path is the config file (read or to be written); From says where
	// each value came from, for messages.
	Path    string `json:"-"`
	URLFrom string `json:"-"`
	KeyFrom string `json:"-"`
}

// configPath is MOOR_CONFIG, else config.json in moor's directory of the
// user's config dir ($XDG_CONFIG_HOME or ~/.config on Linux).
func configPath(getenv func(string) string) (string, error) {
	if p := getenv("MOOR_CONFIG"); p != "" {
		return p, nil
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		var err error
		if dir, err = os.UserConfigDir(); err != nil {
			return "", fmt.Errorf("config file: %v; set MOOR_CONFIG to its path", err)
		}
	}
	return filepath.Join(dir, "moor", "config.json"), nil
}

// loadClientConfig reads the environment and, for what it leaves unset,
// the config file. A missing file is no error; a file others may read is
// (it holds a key), like ssh refuses a private key others can read.
func loadClientConfig(getenv func(string) string) (*clientConfig, error) {
	path, err := configPath(getenv)
	if err != nil {
		return nil, err
	}
	c := &clientConfig{Path: path}
	if v := getenv("MOOR_URL"); v != "" {
		c.URL, c.URLFrom = v, "MOOR_URL"
	}
	if v := getenv("MOOR_API_KEY"); v != "" {
		c.APIKey, c.KeyFrom = v, "MOOR_API_KEY"
	}
	if c.URL == "" || c.APIKey == "" {
		f, err := readConfigFile(path)
		if err != nil {
			return nil, err
		}
		if f != nil && c.URL == "" && f.URL != "" {
			c.URL, c.URLFrom = f.URL, path
		}
		if f != nil && c.APIKey == "" && f.APIKey != "" {
			c.APIKey, c.KeyFrom = f.APIKey, path
		}
	}
	if c.URL == "" {
		c.URL, c.URLFrom = defaultURL, "the default"
	}
	return c, nil
}

// readConfigFile reads the file at path; nil, nil when there is none.
func readConfigFile(path string) (*clientConfig, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config file: %v", err)
	}
	if err := checkPrivate(path); err != nil {
		return nil, err
	}
	var f clientConfig
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("config file %s: not JSON such as {\"url\":..., \"api_key\":...}: %v", path, err)
	}
	return &f, nil
}

// checkPrivate refuses a file that group or others may read or write.
// Windows has no such mode bits.
func checkPrivate(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("config file: %v", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("config file %s: mode %04o lets others read the API key: chmod 600 %s (or run moor login again)", path, perm, path)
	}
	return nil
}

// saveClientConfig writes url and key to path with mode 0600 (its
// directory 0700 when made), through a temporary file renamed over the
// old one, so a crash never leaves half a file or a readable key.
func saveClientConfig(path, url, key string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config file: %v", err)
	}
	b, err := json.MarshalIndent(clientConfig{URL: url, APIKey: key}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("config file: %v", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing left to remove
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("config file: %v", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("config file: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config file: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("config file: %v", err)
	}
	return nil
}

// removeClientConfig deletes the file; a missing one is fine.
func removeClientConfig(path string) (bool, error) {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("config file: %v", err)
	}
	return true, nil
}

// maskKey shows a key's prefix only, for messages.
func maskKey(k string) string {
	if len(k) <= 9 {
		return strings.Repeat("*", len(k))
	}
	return k[:9] + "..."
}
