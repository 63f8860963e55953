package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/store"
)

// Token-request constants of SMART Backend Services.
const (
	GrantClientCredentials = "client_credentials"
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	maxAssertionLifetime   = 5 * time.Minute
	clockSkew              = 30 * time.Second
)

// Algorithms are the client-assertion signature algorithms accepted.
var Algorithms = []jose.SignatureAlgorithm{jose.RS384, jose.ES384}

// Options configure a Server.
type Options struct {
	// TokenURL returns the absolute token endpoint URL a request reached;
	// client assertions must name it as their audience.
	TokenURL func(*http.Request) string
	// TokenTTL is the access-token lifetime (default and maximum 5 min,
	// as SMART recommends).
	TokenTTL time.Duration
	// HTTPClient fetches JWKS URLs (default: 10 s timeout).
	HTTPClient *http.Client
	// Visibility resolves the patients and Groups an organization-bound
	// client may see, once per request; without it such clients see none.
	// Every endpoint shares it through the request's access.Principal.
	Visibility access.Resolver
	// PublicPaths are request paths (exact, e.g. "/fhir/metadata") that
	// Authenticate passes through without a token.
	PublicPaths []string
	// RateLimit bounds token requests (see RateLimit for the defaults).
	RateLimit RateLimit
	Logger    *slog.Logger
	now       func() time.Time
}

// Server issues and checks access tokens.
type Server struct {
	kv      store.KV
	clients *Registry
	opts    Options
	log     *slog.Logger

	jtiMu sync.Mutex // makes the replay check and record one step

	jwksMu sync.Mutex
	jwks   map[string]cachedSet

	limit *limiter
}

type cachedSet struct {
	set     jose.JSONWebKeySet
	expires time.Time
}

// New returns a Server over kv.
func New(kv store.KV, opts Options) (*Server, error) {
	if opts.TokenURL == nil {
		return nil, errors.New("auth: Options.TokenURL is required")
	}
	if opts.TokenTTL <= 0 || opts.TokenTTL > 5*time.Minute {
		opts.TokenTTL = 5 * time.Minute
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{kv: kv, clients: NewRegistry(kv), opts: opts, log: log.With("component", "auth"), jwks: map[string]cachedSet{},
		limit: newLimiter(opts.RateLimit, opts.now)}, nil
}

// Clients is the client registry.
func (s *Server) Clients() *Registry { return s.clients }

// tokenError is an OAuth 2.0 error response (RFC 6749 §5.2).
type tokenError struct {
	status int
	code   string
	desc   string
}

// throttled is a token request refused by the rate limit.
type throttled struct{ wait time.Duration }

func (e *throttled) Error() string { return "too many token requests" }

func (e *tokenError) Error() string { return e.code + ": " + e.desc }

func invalidClient(format string, args ...any) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_client", fmt.Sprintf(format, args...)}
}

// TokenResponse is the body of a successful token request.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// Token serves the token endpoint.
func (s *Server) Token(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Type", "application/json")
	var te *tokenError
	if th := (*throttled)(nil); errors.As(err, &th) {
		// RFC 6749 has no code for this; slow_down is the one OAuth
		// (RFC 8628 §3.5) uses for a client asking too often.
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(th.wait.Seconds())), 10))
		te = &tokenError{http.StatusTooManyRequests, "slow_down", "too many token requests; retry after the Retry-After delay"}
	}
	if te != nil || errors.As(err, &te) {
		s.log.Info("token request rejected", "error", te.code, "reason", te.desc)
		w.WriteHeader(te.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": te.code, "error_description": te.desc})
		return
	}
	if err != nil {
		s.log.Error("token request failed", "error", err)
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "server_error", "error_description": "internal error"})
		return
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) token(r *http.Request) (*TokenResponse, error) {
	if r.Method != http.MethodPost {
		return nil, &tokenError{http.StatusMethodNotAllowed, "invalid_request", "use POST"}
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, &tokenError{http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_request", "malformed form body"}
	}
	f := r.PostForm
	ctx := r.Context()
	if ok, wait := s.limit.take(s.limitKey(ctx, r)); !ok {
		return nil, &throttled{wait}
	}
	if g := f.Get("grant_type"); g != GrantClientCredentials {
		return nil, &tokenError{http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials"}
	}
	if t := f.Get("client_assertion_type"); t != AssertionTypeJWTBearer {
		return nil, &tokenError{http.StatusBadRequest, "invalid_request", "client_assertion_type must be " + AssertionTypeJWTBearer}
	}
	assertion := f.Get("client_assertion")
	if assertion == "" {
		return nil, &tokenError{http.StatusBadRequest, "invalid_request", "client_assertion is required"}
	}
	client, err := s.authenticate(ctx, assertion, s.opts.TokenURL(r), f.Get("client_id"))
	if err != nil {
		return nil, err
	}
	requested := f.Get("scope")
	if strings.TrimSpace(requested) == "" {
		return nil, &tokenError{http.StatusBadRequest, "invalid_scope", "scope is required"}
	}
	granted, err := grant(requested, client.Scopes)
	if err != nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_scope", err.Error()}
	}
	if len(granted) == 0 {
		return nil, &tokenError{http.StatusBadRequest, "invalid_scope", "none of the requested scopes is authorized for this client"}
	}
	tok, err := s.issue(ctx, client, granted)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: tok, TokenType: "bearer", ExpiresIn: int(s.opts.TokenTTL.Seconds()), Scope: strings.Join(granted, " ")}, nil
}

// limitKey is the rate-limit bucket of a token request: the registered
// client it names (form client_id, else the assertion's unverified iss),
// else the remote address. The name is checked before the signature on
// purpose: guessing at one client's key stays bounded however many
// addresses the guesser uses; the price is that forged requests naming a
// client spend that client's bucket too.
func (s *Server) limitKey(ctx context.Context, r *http.Request) string {
	id := r.PostForm.Get("client_id")
	if id == "" {
		if tok, err := jwt.ParseSigned(r.PostForm.Get("client_assertion"), Algorithms); err == nil {
			var c jwt.Claims
			if tok.UnsafeClaimsWithoutVerification(&c) == nil {
				id = c.Issuer
			}
		}
	}
	if id != "" {
		if _, err := s.clients.Get(ctx, id); err == nil {
			return "client\x00" + id
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr\x00" + host
}

// authenticate verifies a client assertion (RFC 7523 §3 and SMART
// Backend Services) and returns its client.
func (s *Server) authenticate(ctx context.Context, assertion, audience, formClientID string) (*Client, error) {
	tok, err := jwt.ParseSigned(assertion, Algorithms)
	if err != nil {
		return nil, invalidClient("client_assertion is not a JWS signed with RS384 or ES384: %v", err)
	}
	if len(tok.Headers) != 1 {
		return nil, invalidClient("client_assertion must have one signature")
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return nil, invalidClient("client_assertion header has no kid")
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "JWT" {
		return nil, invalidClient("client_assertion header typ must be JWT")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalidClient("client_assertion claims are malformed")
	}
	if unverified.Issuer == "" || unverified.Issuer != unverified.Subject {
		return nil, invalidClient("iss and sub must both be the client_id")
	}
	if formClientID != "" && formClientID != unverified.Issuer {
		return nil, invalidClient("client_id does not match the assertion's iss")
	}
	client, err := s.clients.Get(ctx, unverified.Issuer)
	if errors.Is(err, ErrUnknownClient) {
		return nil, invalidClient("unknown client %q", unverified.Issuer)
	}
	if err != nil {
		return nil, err
	}
	if client.Disabled {
		return nil, invalidClient("client %q is disabled", client.ID)
	}
	if jku, ok := h.ExtraHeaders["jku"].(string); ok && jku != client.JWKSURL {
		return nil, invalidClient("jku is not the client's registered JWKS URL")
	}
	key, err := s.key(ctx, client, h.KeyID, h.Algorithm)
	if err != nil {
		return nil, err
	}
	var claims jwt.Claims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return nil, invalidClient("client_assertion signature does not verify")
	}
	now := s.opts.now()
	if claims.Expiry == nil {
		return nil, invalidClient("client_assertion has no exp")
	}
	err = claims.ValidateWithLeeway(jwt.Expected{Issuer: client.ID, Subject: client.ID, AnyAudience: jwt.Audience{audience}, Time: now}, clockSkew)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, invalidClient("client_assertion has expired")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, invalidClient("client_assertion aud must be the token URL %s", audience)
	case err != nil:
		return nil, invalidClient("client_assertion claims: %v", err)
	}
	exp := claims.Expiry.Time()
	if exp.After(now.Add(maxAssertionLifetime + clockSkew)) {
		return nil, invalidClient("client_assertion exp must be at most 5 minutes in the future")
	}
	if claims.ID == "" {
		return nil, invalidClient("client_assertion has no jti")
	}
	if err := s.useJTI(ctx, client.ID, claims.ID, exp.Add(clockSkew)); err != nil {
		return nil, err
	}
	return client, nil
}

// useJTI records a jti until the assertion expires, failing if it was
// already used: an assertion authenticates once.
func (s *Server) useJTI(ctx context.Context, clientID, jti string, until time.Time) error {
	sum := sha256.Sum256([]byte(clientID + "\x00" + jti))
	key := jtiPrefix + hex.EncodeToString(sum[:])
	s.jtiMu.Lock()
	defer s.jtiMu.Unlock()
	v, err := s.kv.Get(ctx, key)
	switch {
	case err == nil:
		if t, perr := time.Parse(time.RFC3339Nano, string(v)); perr != nil || s.opts.now().Before(t) {
			return invalidClient("client_assertion jti was already used")
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("auth: jti check: %w", err)
	}
	if err := s.kv.Put(ctx, key, []byte(until.UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("auth: jti record: %w", err)
	}
	return nil
}

// key selects the one registered key with the header's kid whose type
// fits alg; zero or several matches fail (SMART).
func (s *Server) key(ctx context.Context, c *Client, kid, alg string) (*jose.JSONWebKey, error) {
	want := "RSA"
	if strings.HasPrefix(alg, "ES") {
		want = "EC"
	}
	pick := func(set *jose.JSONWebKeySet) []jose.JSONWebKey {
		var out []jose.JSONWebKey
		for _, k := range set.Key(kid) {
			if keyType(k) == want && (k.Algorithm == "" || k.Algorithm == alg) {
				out = append(out, k)
			}
		}
		return out
	}
	var keys []jose.JSONWebKey
	if c.JWKS != nil {
		keys = pick(c.JWKS)
	} else {
		set, err := s.fetchJWKS(ctx, c.JWKSURL, false)
		if err != nil {
			return nil, err
		}
		keys = pick(set)
		if len(keys) == 0 {
			// The client may have rotated keys since we cached its set.
			if set, err = s.fetchJWKS(ctx, c.JWKSURL, true); err != nil {
				return nil, err
			}
			keys = pick(set)
		}
	}
	if len(keys) != 1 {
		return nil, invalidClient("expected exactly one %s key with kid %q, found %d", want, kid, len(keys))
	}
	return &keys[0], nil
}

// fetchJWKS returns a client's key set, cached no longer than its
// Cache-Control max-age allows (and at most 5 minutes).
func (s *Server) fetchJWKS(ctx context.Context, url string, refresh bool) (*jose.JSONWebKeySet, error) {
	now := s.opts.now()
	s.jwksMu.Lock()
	c, ok := s.jwks[url]
	s.jwksMu.Unlock()
	if ok && !refresh && now.Before(c.expires) {
		return &c.set, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, invalidClient("registered JWKS URL is unusable")
	}
	req.Header.Set("Accept", "application/json")
	res, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, invalidClient("could not fetch the client's JWKS: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, invalidClient("fetching the client's JWKS: HTTP %d", res.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return nil, invalidClient("the client's JWKS is malformed")
	}
	ttl := 5 * time.Minute
	for _, d := range strings.Split(res.Header.Get("Cache-Control"), ",") {
		d = strings.TrimSpace(d)
		if d == "no-store" || d == "no-cache" {
			ttl = 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil && time.Duration(n)*time.Second < ttl {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	s.jwksMu.Lock()
	s.jwks[url] = cachedSet{set: set, expires: now.Add(ttl)}
	s.jwksMu.Unlock()
	return &set, nil
}

// grantRecord is what is stored for an access token.
type grantRecord struct {
	ClientID     string    `json:"client_id"`
	Scopes       []string  `json:"scopes"`
	Organization string    `json:"organization,omitempty"`
	Expires      time.Time `json:"expires"`
}

func tokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return tokenPrefix + hex.EncodeToString(sum[:])
}

func (s *Server) issue(ctx context.Context, c *Client, scopes []string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	rec, err := json.Marshal(grantRecord{ClientID: c.ID, Scopes: scopes, Organization: c.Organization, Expires: s.opts.now().Add(s.opts.TokenTTL).UTC()})
	if err != nil {
		return "", fmt.Errorf("auth: token: %w", err)
	}
	if err := s.kv.Put(ctx, tokenKey(tok), rec); err != nil {
		return "", fmt.Errorf("auth: token: %w", err)
	}
	return tok, nil
}

// ErrInvalidToken means a bearer token is unknown, expired or belongs to
// a client that was removed or disabled.
var ErrInvalidToken = errors.New("auth: invalid or expired access token")

// Principal returns the caller an access token stands for.
func (s *Server) Principal(ctx context.Context, tok string) (*access.Principal, error) {
	v, err := s.kv.Get(ctx, tokenKey(tok))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("auth: token lookup: %w", err)
	}
	var g grantRecord
	if err := json.Unmarshal(v, &g); err != nil || !s.opts.now().Before(g.Expires) {
		return nil, ErrInvalidToken
	}
	c, err := s.clients.Get(ctx, g.ClientID)
	if errors.Is(err, ErrUnknownClient) || (err == nil && c.Disabled) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	// The binding is the client's as registered now, not as it was when the
	// token was issued: rebinding a client takes effect at its next request.
	p := &access.Principal{ClientID: g.ClientID, Scopes: g.Scopes, Organization: c.Organization}
	if err := p.Bind(ctx, s.opts.Visibility); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return p, nil
}

// Sweep deletes expired access tokens and jti records.
func (s *Server) Sweep(ctx context.Context) (int, error) {
	now := s.opts.now()
	var old []string
	err := s.kv.Scan(ctx, tokenPrefix, func(k string, v []byte) error {
		var g grantRecord
		if json.Unmarshal(v, &g) != nil || !now.Before(g.Expires) {
			old = append(old, k)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("auth: sweep: %w", err)
	}
	err = s.kv.Scan(ctx, jtiPrefix, func(k string, v []byte) error {
		if t, err := time.Parse(time.RFC3339Nano, string(v)); err != nil || !now.Before(t) {
			old = append(old, k)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("auth: sweep: %w", err)
	}
	for _, k := range old {
		if err := s.kv.Delete(ctx, k); err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("auth: sweep: %w", err)
		}
	}
	return len(old), nil
}

// Run sweeps expired records every period until ctx is done.
func (s *Server) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("auth sweep", "error", err)
			}
		}
	}
}
