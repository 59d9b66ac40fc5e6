package rules_test

import (
	"errors"
	"testing"

	"github.com/activitychat/chat/contracts/rules"
)

func TestNested(t *testing.T) {
	inner := &rules.FieldError{Field: "kind", Reason: "is required"}
	runChecks(t, []check{
		{"field", rules.Nested("detail", inner), "detail.kind: is required"},
		{"element", rules.NestedIndex("items", 2, inner), "items[2].kind: is required"},
		{"two levels", rules.Nested("header", rules.Nested("origin", inner)), "header.origin.kind: is required"},
		{"nil", rules.Nested("detail", nil), ""},
		{"nil element", rules.NestedIndex("items", 0, nil), ""},
	})
	// An error that is not a FieldError keeps its identity behind the path.
	other := errors.New("odd")
	err := rules.Nested("detail", other)
	if err == nil || err.Error() != "detail: odd" || !errors.Is(err, other) {
		t.Errorf("Nested of a plain error = %v, want \"detail: odd\" wrapping it", err)
	}
}
