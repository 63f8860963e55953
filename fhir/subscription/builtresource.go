package subscription

import "github.com/equitas/equitas/fhir/bundle"

// resource is the map-built resource type shared with other packages that
// emit resources of their own.
type resource = bundle.Resource
