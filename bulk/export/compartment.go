package export

import "github.com/equitas/equitas/store/searchparam"

// compartmentPatients returns the patients whose compartment held a
// resource version: a deleted resource is no longer in the store's
// compartment index, so a Patient or Group export finds the patients of
// its deletions from the last live version. The rule is the one the
// store indexes with (searchparam.PatientCompartmentDef).
func compartmentPatients(typ, id string, body []byte) []string {
	def, ok := searchparam.PatientCompartmentDef(typ)
	var values []searchparam.Value
	if ok {
		// Extract walks only the compartment paths; NewDoc would index every
		// top-level element, which costs more for the one or two paths here.
		values = searchparam.Extract(def, body)
	}
	return searchparam.CompartmentPatients(typ, id, ok, values)
}
