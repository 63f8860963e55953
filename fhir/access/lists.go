package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/store"
)

// NewListCache resolves what a client bound to an organization sees from
// the ATR attribution lists in st: the patients attributed to it through
// a list active today, and its own lists. Results are cached per
// organization until one of its lists changes (every change makes a new
// Group version) or the day turns.
func NewListCache(st store.Store) *Cache {
	kv := st.KV()
	resolve := func(ctx context.Context, org string) (Visibility, error) {
		groups, err := attribution.OrganizationGroups(ctx, kv, org)
		if err != nil {
			return Visibility{}, fmt.Errorf("lists of %s: %w", org, err)
		}
		day := time.Now().UTC().Format(time.DateOnly)
		ids := make(Set, len(groups))
		patients := Set{}
		for _, g := range groups {
			// A list whose Group was deleted over REST keeps its index; it
			// grants nothing any more.
			if _, err := st.Read(ctx, "Group", g.ID); errors.Is(err, store.ErrDeleted) {
				continue
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return Visibility{}, fmt.Errorf("list %s: %w", g.ID, err)
			}
			ids[g.ID] = true
			if !g.ActiveOn(day) {
				continue
			}
			err := attribution.Members(ctx, kv, g.ID, func(e *attribution.Entry) error {
				if e.ActiveOn(day) {
					patients[e.PatientID] = true
				}
				return nil
			})
			if err != nil {
				return Visibility{}, fmt.Errorf("members of %s: %w", g.ID, err)
			}
		}
		return Visibility{Patients: patients, Groups: ids}, nil
	}
	stamp := func(ctx context.Context, org string) (string, error) {
		groups, err := attribution.OrganizationGroups(ctx, kv, org)
		if err != nil {
			return "", fmt.Errorf("lists of %s: %w", org, err)
		}
		var b strings.Builder
		b.WriteString(time.Now().UTC().Format(time.DateOnly))
		for _, g := range groups {
			// The stored Group's version also moves when the list is
			// deleted or replaced over REST, which the index does not see.
			var stored uint64
			if res, err := st.Read(ctx, "Group", g.ID); res != nil && (err == nil || errors.Is(err, store.ErrDeleted)) {
				stored = res.Version
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return "", err
			}
			fmt.Fprintf(&b, "|%s:%d:%d:%s:%s:%s:%s:%d:%d", g.ID, g.Version, stored, g.Status, g.ContractStart, g.ContractEnd, g.AsOf, g.Active, g.Inactive)
		}
		return b.String(), nil
	}
	return NewCache(resolve, stamp, 0)
}
