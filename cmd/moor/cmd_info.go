package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorhq/moor/internal/client"
	"github.com/moorhq/moor/internal/domain"
)

func (a *app) typesCommand() *cobra.Command {
	var out outputFormat
	var category string
	cmd := &cobra.Command{
		Use:   "types [TYPE]",
		Short: "List the catalog's container types, or show one with its settings",
		Example: `  moor types
  moor types testapp`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completeTypes,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				t, err := cl.Type(a.ctx, args[0])
				if err != nil {
					return err
				}
				if out.json() {
					return writeJSON(a.stdout, t)
				}
				printType(a.stdout, t)
				return nil
			}
			ts, err := cl.Types(a.ctx, category)
			if err != nil {
				return err
			}
			if out.json() {
				if ts == nil {
					ts = []domain.Type{}
				}
				return writeJSON(a.stdout, ts)
			}
			t := newTable(a.stdout, "TYPE", "TITLE", "IMAGE", "CATEGORIES")
			for _, ty := range ts {
				t.row(ty.ID, truncate(ty.Title, 40), ty.Image, strings.Join(ty.Categories, ","))
			}
			return t.flush()
		},
	}
	addOutput(cmd, &out, "an array of types (one type with TYPE)")
	cmd.Flags().StringVar(&category, "category", "", "only types of `CATEGORY`")
	return cmd
}

// printType shows a type and the variables moor deploy -e may set.
func printType(w io.Writer, ty domain.Type) {
	t := newTable(w, "type:", ty.ID)
	t.row("title:", ty.Title)
	t.row("image:", ty.Image)
	t.row("categories:", strings.Join(ty.Categories, ", "))
	var ports []string
	for _, p := range ty.Ports {
		s := fmt.Sprintf("%s %d/%s", p.Name, p.Port, p.Protocol)
		if p.HTTP {
			s += " (http)"
		}
		ports = append(ports, s)
	}
	t.row("ports:", strings.Join(ports, ", "))
	var vols []string
	for _, v := range ty.Volumes {
		vols = append(vols, v.Name+":"+v.Path)
	}
	t.row("volumes:", strings.Join(vols, ", "))
	if ty.RequiresAdmin() {
		t.row("note:", "admins only (host mounts or privileged)")
	}
	t.flush()
	if ty.Description != "" {
		fmt.Fprintf(w, "\n%s\n", ty.Description)
	}
	if len(ty.Env) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "VARIABLE", "DEFAULT", "RULE", "DESCRIPTION")
		for _, e := range ty.Env {
			var rule []string
			if e.Required {
				rule = append(rule, "required")
			}
			if len(e.Choices) > 0 {
				rule = append(rule, "one of "+strings.Join(e.Choices, "|"))
			}
			if e.Pattern != "" {
				rule = append(rule, "matches "+e.Pattern)
			}
			if e.Generate != "" {
				rule = append(rule, "generated ("+e.Generate+")")
			}
			if e.IsSecret() {
				rule = append(rule, "secret")
			}
			desc := e.Label
			if e.Description != "" {
				desc = e.Description
			}
			t.row(e.Name, e.Default, strings.Join(rule, ", "), truncate(desc, 60))
		}
		t.flush()
	}
}

func (a *app) eventsCommand() *cobra.Command {
	var (
		out       outputFormat
		after     int64
		limit     int
		follow    bool
		container string
		kind      string
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List moor's latest events; -f follows new ones",
		Long: `List moor's events (container changes, image pulls, keys and users):
the latest --limit of them, oldest first, or with --after SEQ those after
it. With -f, keep printing events as they happen: from --after when given,
else from now. -o json prints one JSON object a line (JSON Lines), with or
without -f.`,
		Example: `  moor events --limit 20
  moor events -f --container blog
  moor events --after 1200 -o json | jq .kind`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			match := func(ev domain.Event) bool {
				return (container == "" || ev.Container == container) && (kind == "" || strings.HasPrefix(ev.Kind, kind))
			}
			print := func(ev domain.Event) error {
				if !match(ev) {
					return nil
				}
				if out.json() {
					b, err := json.Marshal(ev)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(a.stdout, "%s\n", b)
					return err
				}
				_, err := fmt.Fprintln(a.stdout, eventLine(ev))
				return err
			}
			if !follow {
				q := domain.EventQuery{After: after, Limit: limit, Container: container, Kind: kind}
				paging := cmd.Flags().Changed("after")
				if !paging {
					q.Tail = limit // the latest, not the oldest kept
				}
				evs, err := cl.Events(a.ctx, q)
				if err != nil {
					return err
				}
				for _, ev := range evs {
					if err := print(ev); err != nil {
						return err
					}
				}
				if paging && len(evs) == limit {
					fmt.Fprintf(a.stderr, "moor: more events: moor events --after %d\n", evs[len(evs)-1].Seq)
				}
				return nil
			}
			from := int64(-1)
			if cmd.Flags().Changed("after") {
				from = after
			}
			err = cl.Follow(a.ctx, from, 0, print)
			if errors.Is(err, client.ErrPruned) {
				return &exitError{exitRefused, err.Error() + " (start again without --after, or with a later one)"}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.Int64Var(&after, "after", 0, "only events after this `SEQ`")
	f.IntVar(&limit, "limit", 100, "without -f: at most `N` events (the latest, or the first after --after), 1 to 1000")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events (Ctrl-C to end)")
	f.StringVar(&container, "container", "", "only the events of container `NAME`")
	f.StringVar(&kind, "kind", "", "only events whose kind starts with `PREFIX`, e.g. container. or image.pull")
	addOutput(cmd, &out, "one event a line (JSON Lines)")
	return cmd
}

// eventLine is one event as a line: fixed columns, so a followed stream
// lines up without buffering.
func eventLine(ev domain.Event) string {
	var buf bytes.Buffer
	if json.Compact(&buf, ev.Data) != nil {
		buf.Reset()
		buf.Write(ev.Data)
	}
	data := buf.String()
	if data == "{}" || data == "null" {
		data = ""
	}
	return strings.TrimRight(fmt.Sprintf("%-6d %s  %-26s %-16s %-18s %s", ev.Seq, ev.Time.Local().Format(time.TimeOnly),
		ev.Kind, orDash(eventContainer(ev)), ev.Actor, truncate(data, 100)), " ")
}

// eventContainer is an event's container, PROJECT/NAME outside the
// default project, or "" for an event about none.
func eventContainer(ev domain.Event) string {
	if ev.Container == "" {
		return ""
	}
	return eventRef(ev)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
