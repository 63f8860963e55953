// Package resourcetype knows the names of the FHIR R4 resource types, taken
// from the R4 protos of github.com/google/fhir/go so the list matches what
// the validating parser accepts.
package resourcetype

import (
	"sort"
	"sync"

	r4pb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

var (
	once  sync.Once
	names map[string]bool
	list  []string
)

func load() {
	names = map[string]bool{}
	fields := (&r4pb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().ByName("oneof_resource").Fields()
	for i := 0; i < fields.Len(); i++ {
		n := string(fields.Get(i).Message().Name())
		names[n] = true
		list = append(list, n)
	}
	sort.Strings(list)
}

// Valid reports whether name is an R4 resource type.
func Valid(name string) bool {
	once.Do(load)
	return names[name]
}

// All returns every R4 resource type name, sorted.
func All() []string {
	once.Do(load)
	return append([]string(nil), list...)
}
