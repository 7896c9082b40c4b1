package testenv

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { RunMain(m) }

// TestPostgres gets two databases in parallel, checks they are distinct and empty,
// leaves a connection open to one, and checks both are dropped afterwards.
func TestPostgres(t *testing.T) {
	ctx := context.Background()
	var (
		mu    sync.Mutex
		names []string
		open  []*pgx.Conn
	)
	t.Run("group", func(t *testing.T) {
		for _, sub := range []string{"a", "b"} {
			t.Run(sub, func(t *testing.T) {
				t.Parallel()
				url := Postgres(t)
				conn, err := pgx.Connect(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				var name string
				var objects int
				err = conn.QueryRow(ctx, `
					SELECT current_database(),
					       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
					        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
					          AND n.nspname NOT LIKE 'pg_toast%')`).Scan(&name, &objects)
				if err != nil {
					t.Fatal(err)
				}
				if objects != 0 {
					t.Errorf("database %s has %d relations, want none", name, objects)
				}
				if _, err := conn.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				names = append(names, name)
				if sub == "a" {
					open = append(open, conn) // left open: the drop must still work
				} else {
					defer conn.Close(ctx)
				}
				mu.Unlock()
			})
		}
	})
	for _, c := range open {
		c.Close(ctx)
	}
	if t.Failed() {
		return
	}
	if len(names) == 0 {
		t.Skip("no PostgreSQL")
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("databases %q: want two distinct ones", names)
	}
	admin, err := pgx.Connect(ctx, pgAdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var left int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = ANY($1)", names).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d of %q not dropped", left, names)
	}
}

func TestWithDatabase(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable": "postgres://u:p@127.0.0.1:5432/db?sslmode=disable",
		"postgresql://h/":                    "postgresql://h/db",
		"postgres:///postgres?host=/run/pg":  "postgres:///db?host=/run/pg",
		"postgres://h/x?dbname=postgres&a=b": "postgres://h/db?a=b&dbname=db",
	} {
		got, err := withDatabase(in, "db")
		if err != nil || got != want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := withDatabase("host=localhost dbname=x", "db"); err == nil {
		t.Error("keyword/value DSN accepted")
	}
}
