package elm_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/equitas/equitas/measures/elm"
)

// FuzzLoadELM feeds arbitrary bytes to the loader and compiler: malformed
// ELM must fail with an error, never panic.
func FuzzLoadELM(f *testing.F) {
	f.Add([]byte(`{"library":{"identifier":{"id":"T","version":"1"},"statements":{"def":[{"name":"X","expression":{"type":"Add","operand":[{"type":"Literal","valueType":"{urn:hl7-org:elm-types:r1}Integer","value":"1"},{"type":"Null"}]}}]}}}`))
	f.Add([]byte(`{"library":{"identifier":{"id":"T"},"statements":{"def":[{"name":"Q","expression":{"type":"Query","source":[{"alias":"A","expression":{"type":"List","element":[{"type":"Literal","valueType":"{urn:hl7-org:elm-types:r1}String","value":"a"}]}}],"where":{"type":"IsNull","operand":{"type":"AliasRef","name":"A"}}}}]}}}`))
	f.Add([]byte(`{"library":{"identifier":{"id":"T"},"statements":{"def":[{"name":"F","type":"FunctionDef","operand":[{"name":"x","operandTypeSpecifier":{"type":"NamedTypeSpecifier","name":"{urn:hl7-org:elm-types:r1}Integer"}}],"expression":{"type":"OperandRef","name":"x"}},{"name":"Y","expression":{"type":"FunctionRef","name":"F","operand":[{"type":"Literal","valueType":"{urn:hl7-org:elm-types:r1}Integer","value":"2"}]}}]}}}`))
	f.Add([]byte(`{"resourceType":"Library","content":[{"contentType":"application/elm+json","data":"e30="}]}`))
	if files, err := filepath.Glob(filepath.Join("..", "..", "..", "shared", "ecqm", "libraries", "PalliativeCare.json")); err == nil {
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lib, err := elm.ParseLibrary(data)
		if err != nil {
			return
		}
		prog, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{AllowMissingValueSets: true})
		if err != nil {
			return
		}
		ectx := prog.NewContext()
		if _, err := ectx.Evaluate(context.Background(), emptySource{}, nil); errors.Is(err, elm.ErrInternal) {
			t.Fatal(err)
		}
	})
}

type emptySource struct{}

func (emptySource) Retrieve(context.Context, string) ([]json.RawMessage, error) { return nil, nil }
