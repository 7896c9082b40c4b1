package client

import (
	"context"
	"net/url"

	"github.com/moorhq/moor/internal/domain"
)

// Stacks lists the compose stacks of c's project, by name.
func (c *Client) Stacks(ctx context.Context) ([]domain.Stack, error) {
	var out struct {
		Stacks []domain.Stack `json:"stacks"`
	}
	err := c.do(ctx, "GET", c.stacks(), nil, nil, &out)
	return out.Stacks, err
}

// Stack is one stack by name, with its services and their containers.
func (c *Client) Stack(ctx context.Context, name string) (domain.Stack, error) {
	var out domain.Stack
	err := c.do(ctx, "GET", c.stacks()+"/"+seg(name), nil, nil, &out)
	return out, err
}

// CreateStack deploys a compose file (its text) as a new stack; moor
// answers with the stack and its containers, created in one go or not at
// all.
func (c *Client) CreateStack(ctx context.Context, name, compose string) (domain.Stack, error) {
	var out domain.Stack
	err := c.do(ctx, "POST", c.stacks(), nil, map[string]string{"name": name, "compose": compose}, &out)
	return out, err
}

// UpdateStack deploys a new version of a stack's compose file (PUT): only
// the services whose definition changed are replaced; those gone from the
// file are removed, their volumes too when removeVolumes.
func (c *Client) UpdateStack(ctx context.Context, name, compose string, removeVolumes bool) (domain.Stack, error) {
	var out domain.Stack
	err := c.do(ctx, "PUT", c.stacks()+"/"+seg(name), removeVolumesQuery(removeVolumes), map[string]string{"compose": compose}, &out)
	return out, err
}

// DeleteStack asks for every container of a stack to go, their volumes too
// when removeVolumes; the stack goes with the last of them.
func (c *Client) DeleteStack(ctx context.Context, name string, removeVolumes bool) (domain.Stack, error) {
	var out domain.Stack
	err := c.do(ctx, "DELETE", c.stacks()+"/"+seg(name), removeVolumesQuery(removeVolumes), nil, &out)
	return out, err
}

func removeVolumesQuery(remove bool) url.Values {
	if !remove {
		return nil
	}
	return url.Values{"remove_volumes": {"true"}}
}
