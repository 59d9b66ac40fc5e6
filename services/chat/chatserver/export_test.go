package chatserver

// WithoutOrigin returns c without the record of where its values came from,
// so that tests can compare configurations with reflect.DeepEqual.
func WithoutOrigin(c Config) Config {
	c.origin = nil
	return c
}
