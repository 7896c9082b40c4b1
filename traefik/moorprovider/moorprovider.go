// Package moorprovider is a Traefik provider plugin: it long-polls moor's
// provider endpoint and pushes each new dynamic configuration to Traefik the
// moment moor has it.
//
// Traefik runs it under Yaegi, so it uses the standard library only (no
// unsafe, cgo or embed). Install it as a local plugin:
//
//	plugins-local/src/github.com/moorhq/moor/traefik/moorprovider/{.traefik.yml,moorprovider.go}
//
// and see traefik/traefik-plugin.yml for the static configuration.
package moorprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Config is the plugin's part of Traefik's static configuration
// (providers.plugin.moor.*).
type Config struct {
	// Endpoint is moor's provider endpoint, e.g. http://moor:8080/api/v1/traefik/config.
	Endpoint string `json:"endpoint,omitempty"`
	// Token is MOOR_PROVIDER_TOKEN.
	Token string `json:"token,omitempty"`
	// Wait is how long moor holds a request when nothing changed (at most 60s).
	Wait string `json:"wait,omitempty"`
	// MaxBackoff bounds the pause between retries after an error.
	MaxBackoff string `json:"maxBackoff,omitempty"`
}

// CreateConfig returns the defaults.
func CreateConfig() *Config {
	return &Config{Wait: "30s", MaxBackoff: "10s"}
}

// maxBody bounds a configuration (10,000 containers take about 4 MB).
const maxBody = 256 << 20

// Provider follows moor's configuration.
type Provider struct {
	name       string
	endpoint   string
	token      string
	wait       time.Duration
	maxBackoff time.Duration
	client     *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	done   chan struct{}
}

// New checks the configuration and returns a provider.
func New(ctx context.Context, config *Config, name string) (*Provider, error) {
	if config == nil {
		return nil, errors.New("moor provider: no configuration")
	}
	u, err := url.Parse(config.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("moor provider: endpoint must be an http(s) URL of moor's /api/v1/traefik/config (got %q)", config.Endpoint)
	}
	if config.Token == "" {
		return nil, errors.New("moor provider: token is required (MOOR_PROVIDER_TOKEN)")
	}
	wait, err := time.ParseDuration(config.Wait)
	if err != nil || wait < time.Second || wait > 60*time.Second {
		return nil, fmt.Errorf("moor provider: wait must be a duration from 1s to 60s (got %q)", config.Wait)
	}
	maxBackoff, err := time.ParseDuration(config.MaxBackoff)
	if err != nil || maxBackoff < 100*time.Millisecond {
		return nil, fmt.Errorf("moor provider: maxBackoff must be a duration of at least 100ms (got %q)", config.MaxBackoff)
	}
	pctx, cancel := context.WithCancel(context.Background())
	return &Provider{
		name: name, endpoint: config.Endpoint, token: config.Token, wait: wait, maxBackoff: maxBackoff,
		client: &http.Client{Timeout: wait + 15*time.Second},
		ctx:    pctx, cancel: cancel,
	}, nil
}

// Init has nothing to prepare.
func (p *Provider) Init() error { return nil }

// Provide starts following moor and returns at once; every new
// configuration is sent to cfgChan.
func (p *Provider) Provide(cfgChan chan<- json.Marshaler) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return errors.New("moor provider: already started")
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		p.follow(cfgChan)
	}()
	return nil
}

// Stop ends the loop and waits for it.
func (p *Provider) Stop() error {
	p.cancel()
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done != nil {
		<-done
	}
	return nil
}

// follow long-polls moor: with the ETag of the last configuration sent,
// moor answers 304 after wait when nothing changed, or the new
// configuration as soon as it has one. On any error the last good
// configuration stays in Traefik and the request is retried with backoff.
func (p *Provider) follow(cfgChan chan<- json.Marshaler) {
	etag := ""
	backoff := 100 * time.Millisecond
	failing := false
	for p.ctx.Err() == nil {
		body, tag, err := p.fetch(etag)
		if p.ctx.Err() != nil {
			return
		}
		if err != nil {
			if !failing {
				fmt.Fprintf(os.Stderr, "moor provider %s: %v; keeping the last configuration, retrying\n", p.name, err)
			}
			failing = true
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff *= 2
			if backoff > p.maxBackoff {
				backoff = p.maxBackoff
			}
			continue
		}
		if failing {
			fmt.Fprintf(os.Stdout, "moor provider %s: reconnected\n", p.name)
		}
		failing = false
		backoff = 100 * time.Millisecond
		if body == nil {
			continue // 304: unchanged
		}
		etag = tag
		select {
		case cfgChan <- json.RawMessage(body):
		case <-p.ctx.Done():
			return
		}
	}
}

// fetch returns the new configuration and its ETag, or nil for 304.
func (p *Provider) fetch(etag string) ([]byte, string, error) {
	target := p.endpoint
	if etag != "" {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + "wait=" + p.wait.String()
	}
	req, err := http.NewRequestWithContext(p.ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		io.Copy(io.Discard, resp.Body)
		return nil, "", nil
	case http.StatusOK:
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, "", fmt.Errorf("moor answered %s", resp.Status)
	}
	body, err := readBody(resp)
	if err != nil {
		return nil, "", err
	}
	// Never hand Traefik an empty or broken configuration: it would wipe
	// every route. moor always sends at least its own catch-all router.
	if err := checkConfig(body); err != nil {
		return nil, "", err
	}
	tag := resp.Header.Get("ETag")
	if tag == "" {
		return nil, "", errors.New("configuration came without an ETag")
	}
	return body, tag, nil
}

// readBody reads a 200 answer whole. moor sends Content-Length: the buffer
// starts at that size (up to 8 MiB, so a lying header costs no more), a
// body is not copied again and again as it grows, and a short one is an
// error.
func readBody(resp *http.Response) ([]byte, error) {
	n := resp.ContentLength
	if n > maxBody {
		return nil, fmt.Errorf("configuration larger than %d bytes", maxBody)
	}
	var buf bytes.Buffer
	// ReadFrom wants MinRead bytes free to see EOF without growing.
	if n > 8<<20 {
		buf.Grow(8<<20 + bytes.MinRead) // (Yaegi has no min builtin)
	} else if n > 0 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1)); err != nil {
		return nil, fmt.Errorf("configuration cut short: %w", err)
	}
	switch {
	case buf.Len() > maxBody:
		return nil, fmt.Errorf("configuration larger than %d bytes", maxBody)
	case n >= 0 && int64(buf.Len()) != n:
		return nil, fmt.Errorf("configuration cut short: %d of %d bytes", buf.Len(), n)
	}
	return buf.Bytes(), nil
}

// checkConfig accepts a JSON object whose http.routers holds at least one
// router, reading only the start of the document. It does not validate
// the rest: Traefik decodes every configuration it receives and keeps the
// previous one when that fails, so a broken body cannot wipe the routes,
// while an empty routers map would; and a validity scan of 2 MB costs
// about 14 ms on the path of every change.
func checkConfig(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("configuration is not a JSON object")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		if key != "http" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return errors.New("configuration: http is not an object")
		}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			if key == "routers" {
				if t, err := dec.Token(); err != nil || t != json.Delim('{') {
					return errors.New("configuration: http.routers is not an object")
				}
				if !dec.More() {
					break
				}
				return nil
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
		}
		break
	}
	return errors.New("configuration has no routers; refusing to wipe Traefik's routes")
}
