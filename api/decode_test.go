package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		body   string
		status int // 0: accepted
	}{
		{`{"name":"a","type":"t"}`, 0},
		{`{"name":"a","type":"t","env":{"K":"v"},"replicas":2}`, 0},
		{` {"name":"a"} `, 0},
		{``, 400},
		{`{`, 400},
		{`[]`, 400},
		{`null x`, 400},
		{`{"name":"a"}{"name":"b"}`, 400},
		{`{"name":"a","extra":1}`, 400},
		{`{"name":5}`, 400},
		{`{"replicas":"2"}`, 400},
		{`{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("POST", "/", strings.NewReader(c.body))
		var v domain.CreateRequest
		err := decode(req, &v)
		var re *requestError
		switch {
		case c.status == 0 && err != nil:
			t.Errorf("%.40q: %v", c.body, err)
		case c.status != 0 && (!errors.As(err, &re) || re.status != c.status):
			t.Errorf("%.40q: %v, want status %d", c.body, err, c.status)
		}
	}
}

// FuzzDecodeCreate: no input panics; whatever is accepted survives a round
// trip unchanged, so nothing the client did not send sneaks in.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{`{"name":"a","type":"t"}`, `{"env":{"A":"b"},"replicas":3}`, `{"name":"\u0000"}`, `{`, `[]`, `{"x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v domain.CreateRequest
		err := decodeJSON(strings.NewReader(string(body)), &v)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.status < 400 || re.status > 499 {
				t.Fatalf("error %v is not a 4xx request error", err)
			}
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back domain.CreateRequest
		if err := decodeJSON(strings.NewReader(string(out)), &back); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		// Compared as encoded: an empty env and no env are the same request.
		again, _ := json.Marshal(back)
		if !bytes.Equal(out, again) {
			t.Fatalf("round trip changed %s to %s", out, again)
		}
	})
}
