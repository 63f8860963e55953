package attribution

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/equitas/equitas/store"
)

// WriteStatus writes the attribution data of one member of a list as a
// collection Bundle ($attribution-status): the Group holding only that
// member (tagged SUBSETTED), the Patient, its Coverage and the attributed
// provider, as far as they exist and visible (nil: all) lets the caller
// see them; fullUrls are under base (the FHIR base URL). ErrMemberNotFound when the patient is
// not in the list.
func WriteStatus(ctx context.Context, st store.Store, base, groupID, patientID string, w io.Writer, visible func(*store.Resource) bool) error {
	var e Entry
	if err := getJSON(ctx, st.KV(), memberKey(groupID, patientID), &e); err != nil {
		if notFound(err) {
			return fmt.Errorf("%w: Patient/%s", ErrMemberNotFound, patientID)
		}
		return err
	}
	cur, err := st.Read(ctx, "Group", groupID)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		return fmt.Errorf("%w: Group/%s", ErrNoList, groupID)
	}
	if err != nil {
		return err
	}
	h, err := summarize(cur.Body)
	if err != nil {
		return err
	}
	var group bytes.Buffer
	if err := writeMembers(ctx, &group, h, func(fn func(*Entry) error) error { return fn(&e) }); err != nil {
		return err
	}
	type entry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	}
	entries := []entry{{FullURL: base + "/Group/" + groupID, Resource: group.Bytes()}}
	refs := [][2]string{{"Patient", patientID}}
	if e.CoverageID != "" {
		refs = append(refs, [2]string{"Coverage", e.CoverageID})
	}
	switch {
	case e.Provider.PractitionerID != "":
		refs = append(refs, [2]string{"Practitioner", e.Provider.PractitionerID})
	case e.Provider.OrganizationID != "":
		refs = append(refs, [2]string{"Organization", e.Provider.OrganizationID})
	}
	for _, ref := range refs {
		r, err := st.Read(ctx, ref[0], ref[1])
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
			continue
		}
		if err != nil {
			return err
		}
		if visible != nil && !visible(r) {
			continue
		}
		entries = append(entries, entry{FullURL: base + "/" + ref[0] + "/" + ref[1], Resource: r.Body})
	}
	b := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Timestamp    string  `json:"timestamp"`
		Entry        []entry `json:"entry"`
	}{ResourceType: "Bundle", Type: "collection", Timestamp: time.Now().UTC().Format(time.RFC3339), Entry: entries}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(&b)
}
