// Package client is a typed client of moor's REST API and event websocket,
// for the moor command line and tests. It returns domain types; the
// websocket library stays inside it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one moor with one API key. Its zero value is not
// usable: make one with New.
type Client struct {
	base *url.URL // scheme, host and any path prefix, no trailing slash
	key  string
	http *http.Client
	// project is the project whose containers the container calls reach
	// ("": the default project); InProject sets it.
	project string
	// UserAgent is sent with every request.
	UserAgent string
	// Timeout bounds each request that is not a stream (logs -f, the
	// websocket); 0 means 60s.
	Timeout time.Duration
	// MaxRetryWait bounds the total time spent waiting on 429 answers
	// (their Retry-After) before the 429 is returned; 0 means 30s.
	MaxRetryWait time.Duration
	// sleep waits between retries (tests replace it).
	sleep func(context.Context, time.Duration) error
}

// New returns a client of the moor at baseURL (http:// or https://, with
// an optional path prefix) that sends key as its bearer token.
func New(baseURL, key string) (*Client, error) {
	u, err := ParseURL(baseURL)
	if err != nil {
		return nil, err
	}
	return &Client{base: u, key: key, http: &http.Client{
		// A redirect would carry the key elsewhere: moor never redirects
		// its API, so one means a wrong URL.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, UserAgent: "moor-cli", sleep: sleepCtx}, nil
}

// ParseURL checks a moor URL: http or https, a host, no query or
// fragment. A trailing slash is dropped.
func ParseURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		return nil, fmt.Errorf("url: %q must start with http:// or https://", s)
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("url: %q does not parse: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url: %q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url: %q has no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("url: %q must have no user, query or fragment", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// URL is the moor the client talks to.
func (c *Client) URL() string { return c.base.String() }

// APIError is an answer of moor other than 2xx: its status and the
// {"error":{...}} body.
type APIError struct {
	Status  int
	Code    string // e.g. "not_found", "invalid"
	Message string
	Field   string // the field that broke a rule, when one did
	// RetryAfter is the wait moor asked for (429, 503), 0 if none.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("%s (%d %s)", msg, e.Status, e.Code)
	}
	return fmt.Sprintf("%s (%d)", msg, e.Status)
}

// UnreachableError is a request that got no answer from moor: refused,
// timed out, reset, or not HTTP.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach moor at %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ProtocolError is an answer that is not what moor sends: another server
// at the URL, or a proxy in the way.
type ProtocolError struct {
	URL string
	Err error
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("unexpected answer from %s: %v", e.URL, e.Err)
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// MaxBodyBytes is the largest request body moor reads (api.MaxBodyBytes):
// it answers a larger one 413 without reading it, so the client refuses
// to send one.
const MaxBodyBytes = 64 << 10

// TooLargeError is a request whose body is over MaxBodyBytes, refused
// before it was sent.
type TooLargeError struct {
	Size, Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the request would be %d bytes, over the %d (%d KiB) moor reads", e.Size, e.Limit, e.Limit>>10)
}

// IsStatus reports whether err is an APIError with the given status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// endpoint is the URL of path (escaped, starting with /api/v1 or
// /healthz), with query.
func (c *Client) endpoint(path string, query url.Values) string {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u.String()
}

// seg escapes one path segment (a name given by the user).
func seg(s string) string { return url.PathEscape(s) }

// request sends one request and returns the response of a 2xx answer; any
// other answer is an *APIError, no answer an *UnreachableError. A 429 is
// retried after its Retry-After while the total wait stays within
// MaxRetryWait: moor refused it before doing anything, so a retry is safe
// for every method. stream leaves the request without Timeout.
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any, stream bool) (*http.Response, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, err
		}
		if len(payload) > MaxBodyBytes {
			return nil, &TooLargeError{Size: len(payload), Limit: MaxBodyBytes}
		}
	}
	maxWait := c.MaxRetryWait
	if maxWait == 0 {
		maxWait = 30 * time.Second
	}
	var waited time.Duration
	for {
		resp, cancel, err := c.once(ctx, method, path, query, payload, stream)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if cancel != nil {
				resp.Body = &cancelBody{resp.Body, cancel}
			}
			return resp, nil
		}
		apiErr := readError(resp)
		if cancel != nil {
			cancel()
		}
		if apiErr.Status != http.StatusTooManyRequests || waited+apiErr.RetryAfter > maxWait {
			return nil, apiErr
		}
		wait := max(apiErr.RetryAfter, 100*time.Millisecond)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
		waited += wait
	}
}

func (c *Client) once(ctx context.Context, method, path string, query url.Values, payload []byte, stream bool) (*http.Response, context.CancelFunc, error) {
	var cancel context.CancelFunc
	if !stream {
		timeout := c.Timeout
		if timeout == 0 {
			timeout = 60 * time.Second
		}
		ctx, cancel = context.WithTimeout(ctx, timeout)
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, query), rd)
	if err != nil {
		if cancel != nil {
			cancel()
		}
		return nil, nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		if cancel != nil {
			cancel()
		}
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) && !errors.Is(ctxErr, context.DeadlineExceeded) {
			return nil, nil, ctxErr // the caller gave up (Ctrl-C): not moor's fault
		}
		return nil, nil, &UnreachableError{URL: c.base.String(), Err: unwrapURLError(err)}
	}
	return resp, cancel, nil
}

// unwrapURLError drops *url.Error's "Get "http://...": " prefix, which
// repeats the URL the message already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		var ne net.Error
		if errors.As(ue.Err, &ne) && ne.Timeout() {
			return errors.New("timed out")
		}
		return ue.Err
	}
	return err
}

// cancelBody ends a request's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// readError turns a non-2xx answer into an *APIError and closes its body.
// A body that is not moor's error JSON (a proxy's page) keeps its first
// line as the message.
func readError(resp *http.Response) *APIError {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Status: resp.StatusCode}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Field = body.Error.Code, body.Error.Message, body.Error.Field
	} else if line, _, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n"); line != "" {
		e.Message = fmt.Sprintf("%s: %.200s", http.StatusText(resp.StatusCode), line)
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

// do sends a request and decodes a JSON answer into out (nil: the body
// is discarded).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.request(ctx, method, path, query, body, false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &ProtocolError{URL: c.base.String(), Err: fmt.Errorf("%s %s: the answer is not moor's JSON: %v", method, path, err)}
	}
	return nil
}
