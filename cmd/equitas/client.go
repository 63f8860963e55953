package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"

	"github.com/equitas/equitas/fhir/auth"
	"github.com/equitas/equitas/store/badgerstore"
)

// clientTarget is where client commands act: the data directory of a
// stopped server, or the admin API of a running one.
type clientTarget struct {
	data, server, adminToken string
}

func (t *clientTarget) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.data, "data", "", "data directory of a stopped server")
	f.StringVar(&t.server, "server", "", "root URL of a running server (uses its admin API)")
	f.StringVar(&t.adminToken, "admin-token", os.Getenv("EQUITAS_ADMIN_TOKEN"), "admin API token of the running server (default $EQUITAS_ADMIN_TOKEN)")
}

func (t *clientTarget) check() error {
	if (t.data == "") == (t.server == "") {
		return fmt.Errorf("give exactly one of --data and --server")
	}
	return nil
}

// withRegistry runs fn on the registry of a data directory.
func (t *clientTarget) withRegistry(ctx context.Context, fn func(*auth.Registry) error) error {
	st, err := badgerstore.Open(ctx, t.data, badgerstore.Options{})
	if err != nil {
		return fmt.Errorf("open store %s (is the server running? use --server): %w", t.data, err)
	}
	defer st.Close()
	return fn(auth.NewRegistry(st.KV()))
}

// admin calls the admin API of a running server.
func (t *clientTarget) admin(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(t.server, "/")+"/admin"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+t.adminToken)
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, bytes.TrimSpace(out))
	}
	return out, nil
}

func newClientCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Manage SMART Backend Services clients",
		Long: `client registers, lists and removes the backend-service clients allowed to
get access tokens (serve --auth smart). Use --data DIR on a stopped server, or
--server URL with --admin-token on a running one.`,
	}
	cmd.AddCommand(newClientAddCmd(), newClientListCmd(), newClientRemoveCmd())
	return cmd
}

func newClientAddCmd() *cobra.Command {
	var (
		t        clientTarget
		c        auth.Client
		scope    string
		jwksFile string
	)
	cmd := &cobra.Command{
		Use:   "add --id ID --scope SCOPES (--jwks-url URL | --jwks-file FILE) (--data DIR | --server URL)",
		Short: "Register (or replace) a client",
		Example: `  equitas client add --data ./data --id payer-1 --scope 'system/*.read' --jwks-url https://payer.example/jwks.json
  equitas client add --server http://127.0.0.1:8080 --admin-token $T --id ehr --scope 'system/*.rs system/bulk-submit' --jwks-file ehr-jwks.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := t.check(); err != nil {
				return err
			}
			c.Scopes = strings.Fields(strings.ReplaceAll(scope, ",", " "))
			if jwksFile != "" {
				b, err := os.ReadFile(jwksFile)
				if err != nil {
					return err
				}
				c.JWKS = &jose.JSONWebKeySet{}
				if err := json.Unmarshal(b, c.JWKS); err != nil {
					return fmt.Errorf("%s: not a JWKS: %w", jwksFile, err)
				}
			}
			if err := c.Validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			if t.server != "" {
				if _, err := t.admin(ctx, http.MethodPost, "/clients", &c); err != nil {
					return err
				}
			} else if err := t.withRegistry(ctx, func(r *auth.Registry) error { return r.Put(ctx, &c) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered client %s with scopes %s\n", c.ID, strings.Join(c.Scopes, " "))
			return nil
		},
	}
	t.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&c.ID, "id", "", "client_id (the iss and sub of its assertions)")
	f.StringVar(&c.Name, "name", "", "display name")
	f.StringVar(&scope, "scope", "", "pre-authorized scopes, space or comma separated (e.g. 'system/*.read')")
	f.StringVar(&c.JWKSURL, "jwks-url", "", "URL of the client's JWKS (preferred)")
	f.StringVar(&jwksFile, "jwks-file", "", "file holding the client's JWKS (public keys; registered inline)")
	f.StringVar(&c.Organization, "organization", "", "bind the client to an organization (system|value): it sees only patients attributed to it")
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.MarkFlagRequired("scope")
	return cmd
}

func newClientListCmd() *cobra.Command {
	var t clientTarget
	cmd := &cobra.Command{
		Use:   "list (--data DIR | --server URL)",
		Short: "List registered clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := t.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			var cs []*auth.Client
			if t.server != "" {
				b, err := t.admin(ctx, http.MethodGet, "/clients", nil)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &cs); err != nil {
					return err
				}
			} else if err := t.withRegistry(ctx, func(r *auth.Registry) (err error) { cs, err = r.List(ctx); return err }); err != nil {
				return err
			}
			for _, c := range cs {
				keys := c.JWKSURL
				if keys == "" && c.JWKS != nil {
					keys = fmt.Sprintf("%d inline key(s)", len(c.JWKS.Keys))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\t%s\n", c.ID, strings.Join(c.Scopes, " "), keys, c.Organization)
			}
			return nil
		},
	}
	t.flags(cmd)
	return cmd
}

func newClientRemoveCmd() *cobra.Command {
	var t clientTarget
	cmd := &cobra.Command{
		Use:   "remove ID (--data DIR | --server URL)",
		Short: "Remove a client; its access tokens stop working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := t.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			if t.server != "" {
				_, err := t.admin(ctx, http.MethodDelete, "/clients/"+url.PathEscape(args[0]), nil)
				return err
			}
			return t.withRegistry(ctx, func(r *auth.Registry) error { return r.Delete(ctx, args[0]) })
		},
	}
	t.flags(cmd)
	return cmd
}
