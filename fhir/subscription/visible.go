package subscription

import (
	"context"
	"errors"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/store"
)

// Lookup returns Subscription id as p may see it (access.Principal.Sees,
// the rule of read and search); ok is false when it exists but p may not
// see it. Store errors (not found, deleted) are returned as they are.
func (m *Manager) Lookup(ctx context.Context, p *access.Principal, id string) (s *Subscription, ok bool, err error) {
	res, err := m.st.Read(ctx, "Subscription", id)
	if err != nil {
		return nil, false, err
	}
	s, ok = seen(p, res)
	return s, ok, nil
}

// List returns the Subscriptions p may see among ids, or all it may see
// when ids is empty. Unknown and deleted ids are left out like unseen
// ones, so a caller cannot tell them apart.
func (m *Manager) List(ctx context.Context, p *access.Principal, ids []string) ([]*Subscription, error) {
	out := []*Subscription{}
	if len(ids) == 0 {
		err := m.st.Scan(ctx, "Subscription", time.Time{}, func(res *store.Resource) error {
			if s, ok := seen(p, res); ok {
				out = append(out, s)
			}
			return nil
		})
		return out, err
	}
	for _, id := range ids {
		s, ok, err := m.Lookup(ctx, p, id)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// seen returns res as a Subscription when p may see it. A stored body
// this package would not accept any more still reports its status, so
// $status shows what is there.
func seen(p *access.Principal, res *store.Resource) (*Subscription, bool) {
	if !p.Sees(res) {
		return nil, false
	}
	s, err := Parse(res.Body)
	if err != nil {
		s = &Subscription{Status: gjson.GetBytes(res.Body, "status").String()}
	}
	s.ID, s.Version = res.ID, res.Version
	if s.Status == StatusError {
		s.errText = gjson.GetBytes(res.Body, "error").String()
	}
	return s, true
}
