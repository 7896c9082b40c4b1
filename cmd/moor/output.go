package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorhq/moor/internal/client"
)

// outputFormat is the -o flag: a table for people, JSON for scripts.
type outputFormat string

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "format" }
func (o *outputFormat) Set(s string) error {
	switch s {
	case "table", "json":
		*o = outputFormat(s)
		return nil
	}
	return fmt.Errorf("must be table or json, got %q", s)
}

func (o *outputFormat) json() bool { return *o == "json" }

// addOutput adds -o/--output to cmd.
func addOutput(cmd *cobra.Command, o *outputFormat, jsonHelp string) {
	*o = "table"
	cmd.Flags().VarP(o, "output", "o", "table, or json: "+jsonHelp)
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// writeJSON prints v indented, as the API sends it.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table prints rows under a header, columns aligned.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		// A tab or newline in a value would break the columns.
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(c)
		if cells[i] == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// ago is how long ago t was, short: "42s ago", "3h ago", "5d ago".
func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// truncate shortens s to n runes with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// megabytes formats a byte count.
func megabytes(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// showSpec is a command that shows one thing by NAME: a table of it, or
// the API's object with -o json.
type showSpec[T any] struct {
	use, short, jsonHelp string
	aliases              []string
	complete             cobra.CompletionFunc
	check                func(name string) error // a usage error before anything is sent; nil: none
	get                  func(ctx context.Context, cl *client.Client, name string) (T, error)
	print                func(io.Writer, T)
}

// showCommand is the command s describes.
func showCommand[T any](a *app, s showSpec[T]) *cobra.Command {
	var out outputFormat
	cmd := &cobra.Command{
		Use:               s.use,
		Aliases:           s.aliases,
		Short:             s.short,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: s.complete,
		RunE: func(cmd *cobra.Command, args []string) error {
			if s.check != nil {
				if err := s.check(args[0]); err != nil {
					return err
				}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			v, err := s.get(a.ctx, cl, args[0])
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(a.stdout, v)
			}
			s.print(a.stdout, v)
			return nil
		},
	}
	addOutput(cmd, &out, s.jsonHelp)
	return cmd
}
