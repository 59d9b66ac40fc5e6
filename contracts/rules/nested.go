package rules

import (
	"errors"
	"fmt"
	"strconv"
)

// Nested returns err, the error of the Validate method of the message held
// by field, as the error of the enclosing message: the path of a FieldError
// gets field in front, so that "kind: is required" inside field "detail"
// reads "detail.kind: is required". Nested(field, nil) is nil.
func Nested(field string, err error) error {
	return nested(field, err)
}

// NestedIndex is Nested for element i of the repeated field: the path reads
// "items[2].name".
func NestedIndex(field string, i int, err error) error {
	return nested(field+"["+strconv.Itoa(i)+"]", err)
}

func nested(path string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Field: path + "." + fe.Field, Reason: fe.Reason}
	}
	return fmt.Errorf("%s: %w", path, err)
}
