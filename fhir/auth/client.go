// Package auth implements SMART Backend Services authorization for the
// FHIR API: discovery (/.well-known/smart-configuration), the token
// endpoint (client_credentials with a private_key_jwt client assertion
// signed RS384 or ES384), a registry of clients in the store's KV space,
// an admin API to manage them, and the middleware that turns a bearer
// token into the access.Principal every endpoint checks.
//
// Access tokens are opaque random strings; only their SHA-256 is stored,
// with the client, granted scopes and expiry, so tokens survive a restart
// and a leaked KV dump cannot be replayed.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/equitas/equitas/store"
)

const (
	clientPrefix = "auth/client/"
	tokenPrefix  = "auth/token/"
	jtiPrefix    = "auth/jti/"
)

// Errors callers test with errors.Is.
var (
	ErrUnknownClient = errors.New("auth: unknown client")
	ErrInvalidClient = errors.New("auth: invalid client registration")
)

// Client is a registered backend service.
type Client struct {
	ID   string `json:"client_id"`
	Name string `json:"name,omitempty"`
	// Scopes are the pre-authorized scopes; a token grants the requested
	// scopes that lie within them.
	Scopes []string `json:"scopes"`
	// Exactly one of JWKS (inline public keys, discouraged by SMART) and
	// JWKSURL (fetched when needed) is set.
	JWKS    *jose.JSONWebKeySet `json:"jwks,omitempty"`
	JWKSURL string              `json:"jwks_url,omitempty"`
	// Organization binds a provider client to an organization
	// ("system|value"); it then sees only patients attributed to it.
	Organization string    `json:"organization,omitempty"`
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
}

var clientID = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// Validate checks a registration and reduces inline keys to their public
// parts (a private key sent by mistake is never stored).
func (c *Client) Validate() error {
	if !clientID.MatchString(c.ID) {
		return fmt.Errorf("%w: client_id must be 1-128 of A-Z a-z 0-9 . _ ~ -", ErrInvalidClient)
	}
	if len(c.Scopes) == 0 {
		return fmt.Errorf("%w: at least one scope is required", ErrInvalidClient)
	}
	for _, s := range c.Scopes {
		if _, err := parseScope(s); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidClient, err)
		}
	}
	hasSet := c.JWKS != nil && len(c.JWKS.Keys) > 0
	if hasSet == (c.JWKSURL != "") {
		return fmt.Errorf("%w: give exactly one of jwks and jwks_url", ErrInvalidClient)
	}
	if hasSet {
		pub := make([]jose.JSONWebKey, 0, len(c.JWKS.Keys))
		for i, k := range c.JWKS.Keys {
			if k.KeyID == "" {
				return fmt.Errorf("%w: jwks key %d has no kid", ErrInvalidClient, i)
			}
			if keyType(k) == "" {
				return fmt.Errorf("%w: jwks key %q must be an RSA or EC key", ErrInvalidClient, k.KeyID)
			}
			pub = append(pub, k.Public())
		}
		c.JWKS = &jose.JSONWebKeySet{Keys: pub}
	}
	return nil
}

// Registry stores clients in the store's KV space.
type Registry struct{ kv store.KV }

// NewRegistry returns the registry over kv.
func NewRegistry(kv store.KV) *Registry { return &Registry{kv: kv} }

// Put validates and saves a client, replacing one with the same id.
func (r *Registry) Put(ctx context.Context, c *Client) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now().UTC()
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("auth: encode client: %w", err)
	}
	if err := r.kv.Put(ctx, clientPrefix+c.ID, b); err != nil {
		return fmt.Errorf("auth: save client %s: %w", c.ID, err)
	}
	return nil
}

// Get returns a client or ErrUnknownClient.
func (r *Registry) Get(ctx context.Context, id string) (*Client, error) {
	if !clientID.MatchString(id) {
		return nil, ErrUnknownClient
	}
	b, err := r.kv.Get(ctx, clientPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownClient
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read client %s: %w", id, err)
	}
	var c Client
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("auth: client %s: %w", id, err)
	}
	return &c, nil
}

// Delete removes a client; its tokens stop working at their next use.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if _, err := r.Get(ctx, id); err != nil {
		return err
	}
	if err := r.kv.Delete(ctx, clientPrefix+id); err != nil {
		return fmt.Errorf("auth: delete client %s: %w", id, err)
	}
	return nil
}

// List returns every client in id order.
func (r *Registry) List(ctx context.Context) ([]*Client, error) {
	var out []*Client
	err := r.kv.Scan(ctx, clientPrefix, func(_ string, v []byte) error {
		var c Client
		if json.Unmarshal(v, &c) == nil {
			out = append(out, &c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: list clients: %w", err)
	}
	return out, nil
}

// keyType is "RSA" or "EC" for the key types SMART uses, else "".
func keyType(k jose.JSONWebKey) string {
	switch k.Key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PublicKey, *ecdsa.PrivateKey:
		return "EC"
	}
	return ""
}
