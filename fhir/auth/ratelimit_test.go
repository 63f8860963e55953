package auth_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/auth"
)

// TestTokenRateLimit: each registered client has its own bucket; requests
// naming no registered client share their address's bucket; a refused
// request gets 429, slow_down and Retry-After.
func TestTokenRateLimit(t *testing.T) {
	e := newEnv(t, func(o *auth.Options) { o.RateLimit = auth.RateLimit{PerSecond: 0.001, Burst: 2} })
	for _, tc := range []struct {
		name   string
		client string
		status int
	}{
		{"payer 1", "payer", http.StatusOK},
		{"payer 2", "payer", http.StatusOK},
		{"payer's bucket is empty", "payer", http.StatusTooManyRequests},
		{"another client has its own bucket", "narrow", http.StatusOK},
		{"unknown client 1", "nobody", http.StatusBadRequest},
		{"unknown client 2", "nobody-else", http.StatusBadRequest},
		{"unknown clients share the address's bucket", "someone", http.StatusTooManyRequests},
		{"registered clients are not limited by it", "narrow", http.StatusOK},
		{"narrow's bucket is empty", "narrow", http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := http.PostForm(e.tokenURL, form(e.assertion(tc.client).sign(t), "system/Patient.read"))
			require.NoError(t, err)
			defer res.Body.Close()
			assert.Equal(t, tc.status, res.StatusCode)
			if tc.status != http.StatusTooManyRequests {
				assert.Empty(t, res.Header.Get("Retry-After"))
				return
			}
			after, err := strconv.Atoi(res.Header.Get("Retry-After"))
			require.NoError(t, err)
			assert.Positive(t, after)
			assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		})
	}
	r := e.token(form(e.assertion("payer").sign(t), "system/*.read"))
	assert.Equal(t, "slow_down", r.body.Get("error").String())
}
