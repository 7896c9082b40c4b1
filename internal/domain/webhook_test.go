package domain

import (
	"errors"
	"testing"
)

func TestWebhookMatches(t *testing.T) {
	w := Webhook{Events: []string{"container.*", "apikey.created"}}
	for kind, want := range map[string]bool{
		"container.running": true, "container.stop_requested": true, "apikey.created": true,
		"apikey.revoked": false, "containers.x": false, "webhook.created": false,
	} {
		if w.Matches(kind) != want {
			t.Errorf("%v matches %q: %v, want %v", w.Events, kind, !want, want)
		}
	}
	if !(Webhook{Events: []string{"*"}}).Matches("anything.at_all") {
		t.Error("* must match every kind")
	}
}

func TestWebhookValidate(t *testing.T) {
	ok := Webhook{Name: "n8n", URL: "https://n8n.example/webhook/abc?x=1", Events: []string{"container.*"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, bad := range map[string][]Webhook{
		"name": {{Name: "N8N"}, {Name: "a`b"}, {Name: ""}},
		"url": {{URL: "ftp://x/"}, {URL: "/relative"}, {URL: "http://"}, {URL: "https://user:pw@x/"},
			{URL: "javascript:alert(1)"}, {URL: "https://x/#frag"}},
		"events": {{Events: nil}, {Events: []string{"bad pattern"}}, {Events: []string{"container.*.x"}},
			{Events: []string{"*.running"}}, {Events: []string{"Container.running"}}},
	} {
		for _, b := range bad {
			w := ok
			switch field {
			case "name":
				w.Name = b.Name
			case "url":
				w.URL = b.URL
			case "events":
				w.Events = b.Events
			}
			var fe *FieldError
			if err := w.Validate(); !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("%+v: %v, want an error naming %s", b, err, field)
			}
		}
	}
}
