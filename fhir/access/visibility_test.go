package access_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/store"
)

func res(typ, id, body string) *store.Resource {
	return &store.Resource{Type: typ, ID: id, Body: []byte(body)}
}

// TestSees is the rule every endpoint applies, one row per case of its
// doc comment.
func TestSees(t *testing.T) {
	provider := &access.Principal{ClientID: "clinic", Organization: "org-a"}
	provider.Restrict(access.Visibility{Patients: access.Set{"mine": true}, Groups: access.Set{"list-a": true}})
	payer := &access.Principal{ClientID: "payer"}
	for _, tc := range []struct {
		name     string
		res      *store.Resource
		provider bool
	}{
		{"own patient", res("Patient", "mine", `{"resourceType":"Patient","id":"mine"}`), true},
		{"other patient", res("Patient", "theirs", `{"resourceType":"Patient","id":"theirs"}`), false},
		{"patient linking to own patient", res("Patient", "theirs", `{"resourceType":"Patient","id":"theirs","link":[{"other":{"reference":"Patient/mine"},"type":"seealso"}]}`), false},
		{"own list", res("Group", "list-a", `{"resourceType":"Group","id":"list-a"}`), true},
		{"other list", res("Group", "list-b", `{"resourceType":"Group","id":"list-b"}`), false},
		{"group listing own patient", res("Group", "g", `{"resourceType":"Group","id":"g","member":[{"entity":{"reference":"Patient/mine"}}]}`), false},
		{"own patient's observation", res("Observation", "o1", `{"resourceType":"Observation","subject":{"reference":"Patient/mine"}}`), true},
		{"other patient's observation", res("Observation", "o2", `{"resourceType":"Observation","subject":{"reference":"Patient/theirs"}}`), false},
		{"observation of no patient", res("Observation", "o3", `{"resourceType":"Observation","code":{"text":"x"}}`), false},
		{"coverage subscribed by own patient", res("Coverage", "c1", `{"resourceType":"Coverage","beneficiary":{"reference":"Patient/theirs"},"subscriber":{"reference":"Patient/mine"}}`), true},
		{"encounter shared with other patient", res("Encounter", "e1", `{"resourceType":"Encounter","subject":{"reference":"Patient/mine"}}`), true},
		{"provenance of own list", res("Provenance", "pv1", `{"resourceType":"Provenance","target":[{"reference":"Group/list-a/_history/2"}]}`), true},
		{"provenance of other list", res("Provenance", "pv2", `{"resourceType":"Provenance","target":[{"reference":"Group/list-b/_history/2"}]}`), false},
		{"provenance of own member", res("Provenance", "pv3", `{"resourceType":"Provenance","target":[{"reference":"Patient/mine"}]}`), true},
		{"provenance of other list naming own member", res("Provenance", "pv4", `{"resourceType":"Provenance","target":[{"reference":"Group/list-b/_history/3"},{"reference":"Patient/mine"}]}`), false},
		{"practitioner (directory)", res("Practitioner", "pr", `{"resourceType":"Practitioner"}`), true},
		{"organization (directory)", res("Organization", "org", `{"resourceType":"Organization"}`), true},
		{"value set (definition)", res("ValueSet", "vs", `{"resourceType":"ValueSet"}`), true},
		{"bundle may hold anyone", res("Bundle", "b", `{"resourceType":"Bundle","type":"collection"}`), false},
		{"message header", res("MessageHeader", "m", `{"resourceType":"MessageHeader"}`), false},
		{"own subscription", res("Subscription", "s1", `{"resourceType":"Subscription","extension":[{"url":"`+access.SubscriptionOwnerExtension+`","valueString":"Organization/org-a"}]}`), true},
		{"other's subscription", res("Subscription", "s2", `{"resourceType":"Subscription","extension":[{"url":"`+access.SubscriptionOwnerExtension+`","valueString":"org-b"}]}`), false},
		{"subscription without owner", res("Subscription", "s3", `{"resourceType":"Subscription"}`), false},
		{"tombstone of compartment type", &store.Resource{Type: "Observation", ID: "o1", Deleted: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.provider, provider.Sees(tc.res), "provider")
			assert.True(t, payer.Sees(tc.res), "an unrestricted caller sees everything")
		})
	}
	var nobody *access.Principal
	assert.False(t, nobody.Sees(res("Organization", "x", `{}`)))
	unresolved := &access.Principal{Organization: "org"}
	unresolved.Restrict(access.Visibility{})
	assert.False(t, unresolved.Sees(res("Patient", "mine", `{}`)), "no resolver: no patients")
	assert.False(t, unresolved.SeesGroup("list-a"))
	assert.True(t, unresolved.Restricted())
	assert.False(t, payer.Restricted())
}

// TestCache: a resolution is reused while the stamp is unchanged, redone
// when it changes, shared by concurrent misses, and not kept on error.
func TestCache(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	stamp := map[string]string{"a": "1", "b": "1"}
	var mu sync.Mutex
	fail := false
	c := access.NewCache(func(ctx context.Context, org string) (access.Visibility, error) {
		calls.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return access.Visibility{}, errors.New("index unreadable")
		}
		return access.Visibility{Patients: access.Set{org + stamp[org]: true}}, nil
	}, func(ctx context.Context, org string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		return stamp[org], nil
	}, 1)

	v, err := c.Resolve(ctx, "a")
	require.NoError(t, err)
	assert.True(t, v.Patients.Contains("a1"))
	_, err = c.Resolve(ctx, "a")
	require.NoError(t, err)
	assert.EqualValues(t, 1, calls.Load(), "same stamp: cached")

	mu.Lock()
	stamp["a"] = "2"
	mu.Unlock()
	v, err = c.Resolve(ctx, "a")
	require.NoError(t, err)
	assert.True(t, v.Patients.Contains("a2"), "a changed list is seen at once")
	assert.EqualValues(t, 2, calls.Load())

	_, err = c.Resolve(ctx, "b") // max 1: evicts a
	require.NoError(t, err)
	_, err = c.Resolve(ctx, "a")
	require.NoError(t, err)
	assert.EqualValues(t, 4, calls.Load())

	mu.Lock()
	fail, stamp["a"] = true, "3"
	mu.Unlock()
	_, err = c.Resolve(ctx, "a")
	require.Error(t, err)
	mu.Lock()
	fail = false
	mu.Unlock()
	v, err = c.Resolve(ctx, "a")
	require.NoError(t, err, "an error is not cached")
	assert.True(t, v.Patients.Contains("a3"))

	calls.Store(0)
	mu.Lock()
	stamp["a"] = "4"
	mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Resolve(ctx, "a")
			assert.NoError(t, err)
			assert.True(t, v.Patients.Contains("a4"), fmt.Sprint(v))
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, calls.Load(), "concurrent misses share one resolution")
}

// TestMayWriteGroup: a provider's list must name its organization and
// list only patients it already sees, so writing a list cannot widen
// anyone's access.
func TestMayWriteGroup(t *testing.T) {
	provider := &access.Principal{ClientID: "clinic", Organization: "http://hl7.org/fhir/sid/us-npi|1111111111"}
	provider.Restrict(access.Visibility{Patients: access.Set{"mine": true}})
	for _, tc := range []struct {
		name string
		body string
		ok   bool
	}{
		{"empty list naming its NPI", `{"resourceType":"Group","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1111111111"}]}`, true},
		{"list naming its organization", `{"resourceType":"Group","characteristic":[{"valueReference":{"reference":"Organization/1111111111"}}]}`, true},
		{"own member", `{"resourceType":"Group","identifier":[{"value":"1111111111"}],"member":[{"entity":{"reference":"Patient/mine"}}]}`, true},
		{"another patient as member", `{"resourceType":"Group","identifier":[{"value":"1111111111"}],"member":[{"entity":{"reference":"Patient/theirs"}}]}`, false},
		{"list of another organization", `{"resourceType":"Group","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"2222222222"}]}`, false},
		{"list naming nobody", `{"resourceType":"Group","type":"person"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := provider.MayWriteGroup([]byte(tc.body))
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
			assert.NoError(t, (&access.Principal{ClientID: "payer"}).MayWriteGroup([]byte(tc.body)), "payers write any list")
		})
	}
}
