package auth

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
)

// Authenticate is the middleware of the FHIR routes: it puts the
// access.Principal of the request's bearer token in the context, or
// answers 401 with an OperationOutcome. Scope checks are the handlers'
// (403 when the scopes do not cover the interaction).
func (s *Server) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(s.opts.PublicPaths, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="equitas"`)
			outcome.Error(w, http.StatusUnauthorized, "login", "a bearer access token is required (SMART Backend Services)")
			return
		}
		p, err := s.Principal(r.Context(), strings.TrimSpace(tok))
		if errors.Is(err, ErrInvalidToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="equitas", error="invalid_token"`)
			outcome.Error(w, http.StatusUnauthorized, "expired", "the access token is invalid or expired")
			return
		}
		if err != nil {
			s.log.Error("authenticating request", "error", err)
			outcome.Error(w, http.StatusServiceUnavailable, "transient", "could not check the access token; retry")
			return
		}
		next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), p)))
	})
}

// Discovery serves /.well-known/smart-configuration (always JSON).
func (s *Server) Discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token_endpoint":                                   s.opts.TokenURL(r),
		"grant_types_supported":                            []string{GrantClientCredentials},
		"token_endpoint_auth_methods_supported":            []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{string(Algorithms[0]), string(Algorithms[1])},
		"scopes_supported":                                 []string{"system/*.read", "system/*.rs", "system/*.cud", "system/*.write", "system/bulk-submit"},
		"capabilities":                                     []string{"client-confidential-asymmetric", "permission-v1", "permission-v2"},
		"code_challenge_methods_supported":                 []string{"S256"},
	})
}

// AdminRoutes mounts the client admin API on r:
//
//	POST   /clients        register (or replace) a client (JSON Client)
//	GET    /clients        list clients
//	GET    /clients/{id}   one client
//	DELETE /clients/{id}   remove a client
//
// Protect r with AdminOnly.
func (s *Server) AdminRoutes(r chi.Router) {
	r.Post("/clients", s.putClient)
	r.Get("/clients", s.listClients)
	r.Get("/clients/{id}", s.getClient)
	r.Delete("/clients/{id}", s.deleteClient)
}

// AdminOnly admits requests carrying the admin bearer token. An empty
// token admits every request: only for servers without auth, which
// listen on loopback.
func AdminOnly(token string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token != "" {
				scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
				if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
					w.Header().Set("WWW-Authenticate", `Bearer realm="equitas-admin"`)
					outcome.Error(w, http.StatusUnauthorized, "login", "the admin token is required")
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (s *Server) putClient(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		outcome.Error(w, http.StatusRequestEntityTooLarge, "too-costly", "client registration too large")
		return
	}
	var c Client
	if err := json.Unmarshal(body, &c); err != nil {
		outcome.Error(w, http.StatusBadRequest, "invalid", "malformed client registration: "+err.Error())
		return
	}
	if s.registryFailed(w, s.clients.Put(r.Context(), &c), "save the client") {
		return
	}
	writeJSON(w, http.StatusCreated, &c)
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	cs, err := s.clients.List(r.Context())
	if s.registryFailed(w, err, "list clients") {
		return
	}
	if cs == nil {
		cs = []*Client{}
	}
	writeJSON(w, http.StatusOK, cs)
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := s.clients.Get(r.Context(), chi.URLParam(r, "id"))
	if s.registryFailed(w, err, "read the client") {
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request) {
	if s.registryFailed(w, s.clients.Delete(r.Context(), chi.URLParam(r, "id")), "delete the client") {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// registryFailed answers a failed registry call: 400 for an invalid
// client, 404 for an unknown one, otherwise 500 (logged, since the cause is
// the server's). It reports whether err was an error.
func (s *Server) registryFailed(w http.ResponseWriter, err error, doing string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrInvalidClient):
		outcome.Error(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, ErrUnknownClient):
		outcome.Error(w, http.StatusNotFound, "not-found", "no such client")
	default:
		s.log.Error("could not "+doing, "error", err)
		outcome.Error(w, http.StatusInternalServerError, "exception", "could not "+doing)
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
