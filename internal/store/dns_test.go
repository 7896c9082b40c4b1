package store

import (
	"context"
	"testing"
)

// migrated is a store on a new database with every migration applied.
func migrated(t *testing.T) *Store {
	t.Helper()
	s := open(t)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDNSSerial(t *testing.T) {
	s := migrated(t)
	ctx := context.Background()
	steps := []struct {
		hash string
		want uint32
	}{
		{"a", 2}, // the stored hash is empty: new content
		{"a", 2}, // same content, same serial (any process)
		{"b", 3},
		{"a", 4}, // back to earlier content is still a change
	}
	for i, st := range steps {
		got, err := s.DNSSerial(ctx, []byte(st.hash))
		if err != nil {
			t.Fatal(err)
		}
		if got != st.want {
			t.Fatalf("step %d (%s): serial %d, want %d", i, st.hash, got, st.want)
		}
	}
	// The serial wraps within 1..2^32-1 (RFC 1982 arithmetic).
	if _, err := s.pool.Exec(ctx, `UPDATE dns_serial SET serial = 4294967295`); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DNSSerial(ctx, []byte("c")); err != nil || got != 1 {
		t.Fatalf("after 2^32-1: serial %d (%v), want 1", got, err)
	}
}

func TestDNSStateOfUnknownContainer(t *testing.T) {
	s := migrated(t)
	st, err := s.DNSStateOf(context.Background(), []string{"00000000-0000-0000-0000-000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Records)+len(st.Ports)+len(st.Aliases) != 0 {
		t.Fatalf("rows for an unknown container: %+v", st)
	}
}
