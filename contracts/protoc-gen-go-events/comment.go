package main

import (
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
)

// commentWidth is the width generated doc comments are wrapped at, the
// "// " included.
const commentWidth = 80

// comment writes paragraphs as a doc comment wrapped at commentWidth, with
// an empty comment line between paragraphs. A word longer than the width
// stands on a line of its own.
func comment(g *protogen.GeneratedFile, paragraphs ...string) {
	for i, p := range paragraphs {
		if i > 0 {
			g.P("//")
		}
		line := "//"
		for _, w := range strings.Fields(p) {
			if line != "//" && len(line)+1+len(w) > commentWidth {
				g.P(line)
				line = "//"
			}
			line += " " + w
		}
		g.P(line)
	}
}
