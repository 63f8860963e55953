package caregaps

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/store"
)

// Population returns the ids of the patients a request covers, sorted,
// keeping only those visible reports true for (nil: all):
//
//   - subject Patient/x: that patient (ErrNotFound when absent or hidden);
//   - subject Group/x: the members of an ATR attribution list (active on
//     the attribution date) or of a stored Group (member.entity, inactive
//     members left out); ErrNotFound when neither exists;
//   - organization: the patients attributed to the organization through an
//     active attribution list, and those whose managingOrganization it is;
//   - practitioner with organization: of those, the patients attributed to
//     the practitioner (its NPI) or whose generalPractitioner it is.
//
// The attribution date is the end of the gaps-through period, or today
// when that is in the future.
func (s *Service) Population(ctx context.Context, req *Request, visible func(string) bool) ([]string, error) {
	at := s.attributionDate(req)
	keep := func(ids map[string]bool) []string {
		out := make([]string, 0, len(ids))
		for id := range ids {
			if visible == nil || visible(id) {
				out = append(out, id)
			}
		}
		sort.Strings(out)
		return out
	}
	if req.Subject != "" {
		typ, id, _ := splitRef(req.Subject)
		if typ == "Patient" {
			if _, err := s.st.Read(ctx, "Patient", id); err != nil || (visible != nil && !visible(id)) {
				if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrDeleted) {
					return nil, fmt.Errorf("caregaps: reading %s: %w", req.Subject, err)
				}
				return nil, fmt.Errorf("%w: %s", ErrNotFound, req.Subject)
			}
			return []string{id}, nil
		}
		ids, err := s.groupMembers(ctx, id, at)
		if err != nil {
			return nil, err
		}
		return keep(ids), nil
	}
	_, org, _ := splitRef(req.Organization)
	ids, err := attribution.OrganizationPatients(ctx, s.st.KV(), org, at)
	if err != nil {
		return nil, fmt.Errorf("caregaps: attribution of %s: %w", req.Organization, err)
	}
	if err := s.searchPatients(ctx, "organization", req.Organization, func(id string) { ids[id] = true }); err != nil {
		return nil, err
	}
	if req.Practitioner == "" {
		return keep(ids), nil
	}
	_, prID, _ := splitRef(req.Practitioner)
	pr, err := s.st.Read(ctx, "Practitioner", prID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, req.Practitioner)
		}
		return nil, fmt.Errorf("caregaps: reading %s: %w", req.Practitioner, err)
	}
	npi := ""
	gjson.GetBytes(pr.Body, "identifier").ForEach(func(_, i gjson.Result) bool {
		if i.Get("system").String() == attribution.SystemNPI {
			npi = i.Get("value").String()
			return false
		}
		return true
	})
	gp := map[string]bool{}
	if err := s.searchPatients(ctx, "general-practitioner", req.Practitioner, func(id string) { gp[id] = true }); err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for id := range ids {
		if gp[id] {
			mine[id] = true
			continue
		}
		if npi == "" {
			continue
		}
		as, err := attribution.Assignments(ctx, s.st.KV(), id, at)
		if err != nil {
			return nil, fmt.Errorf("caregaps: attribution of Patient/%s: %w", id, err)
		}
		for _, a := range as {
			if a.ProviderNPI == npi && (a.OrganizationID == org || a.NPI == org || a.TIN == org) {
				mine[id] = true
			}
		}
	}
	return keep(mine), nil
}

func (s *Service) attributionDate(req *Request) time.Time {
	now := s.opts.Now()
	p := req.Period()
	end := time.Date(p.End.Year, time.Month(p.End.Month), p.End.Day, 0, 0, 0, 0, time.UTC)
	if end.After(now) {
		return now
	}
	return end
}

// groupMembers lists the Group's members at the attribution date;
// catalog.GroupMembers is the rule every measure operation shares.
func (s *Service) groupMembers(ctx context.Context, id string, at time.Time) (map[string]bool, error) {
	ids, err := catalog.GroupMembers(ctx, s.st, id, at)
	if errors.Is(err, catalog.ErrSubjectNotFound) {
		return nil, fmt.Errorf("%w: Group/%s", ErrNotFound, id)
	}
	return ids, err
}

// searchPatients calls fn with the id of every Patient whose param
// references ref.
func (s *Service) searchPatients(ctx context.Context, param, ref string, fn func(string)) error {
	q := store.Query{Type: "Patient", Params: []store.Param{{Name: param, Values: []string{ref}}}, Count: 1000}
	for {
		res, err := s.st.Search(ctx, q)
		if err != nil {
			return fmt.Errorf("caregaps: Patient?%s=%s: %w", param, ref, err)
		}
		for _, r := range res.Resources {
			fn(r.ID)
		}
		if res.NextCursor == "" {
			return nil
		}
		q.Cursor = res.NextCursor
	}
}
