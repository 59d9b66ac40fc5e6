package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/activitychat/chat/services/chat/chatserver"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
)

// readmes are the READMEs that walk a user through the project, from this
// package's directory.
var readmes = []string{"../../../../README.md", "../../../../README.zh-CN.md"}

// snippet is a fenced yaml block of a README.
type snippet struct {
	line int    // line of the opening fence
	file string // the config file it belongs to, from its first line
	text string
}

var (
	fence   = regexp.MustCompile("^```(\\w*)\\s*$")
	envRef  = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)
	forFile = regexp.MustCompile(`^#\s*(chat\.yaml|consumer\.yaml)\b`)
)

// snippets returns the yaml blocks of a README.
func snippets(t *testing.T, path string) []snippet {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out    []snippet
		cur    *snippet
		inside bool
		lang   string
	)
	for i, line := range strings.Split(string(data), "\n") {
		m := fence.FindStringSubmatch(line)
		switch {
		case m != nil && !inside:
			inside, lang = true, m[1]
			if lang == "yaml" {
				cur = &snippet{line: i + 1}
			}
		case m != nil && inside && m[1] == "":
			inside = false
			if cur != nil {
				out = append(out, *cur)
				cur = nil
			}
		case cur != nil:
			if cur.text == "" {
				if fm := forFile.FindStringSubmatch(line); fm != nil {
					cur.file = fm[1]
				}
			}
			cur.text += line + "\n"
		}
	}
	return out
}

// TestREADMEConfigSnippetsLoad extracts every yaml block of both READMEs
// and loads it through the loader of the file its first line names, with
// every environment variable it references set.
func TestREADMEConfigSnippetsLoad(t *testing.T) {
	counts := map[string]int{}
	for _, readme := range readmes {
		name := filepath.Base(readme)
		blocks := snippets(t, readme)
		counts[name] = len(blocks)
		if len(blocks) < 3 {
			t.Errorf("%s has %d yaml snippets, want the chat, PostgreSQL and consumer ones", name, len(blocks))
		}
		for _, s := range blocks {
			t.Run(fmt.Sprintf("%s:%d", name, s.line), func(t *testing.T) {
				for _, m := range envRef.FindAllStringSubmatch(s.text, -1) {
					if m[2] == "" {
						t.Setenv(m[1], "readme-test-value")
					}
				}
				file := filepath.Join(t.TempDir(), s.file)
				if err := os.WriteFile(file, []byte(s.text), 0o600); err != nil {
					t.Fatal(err)
				}
				var err error
				switch s.file {
				case "chat.yaml":
					_, err = chatserver.Load(file)
				case "consumer.yaml":
					_, err = config.Load(file)
				default:
					t.Fatalf("the snippet at line %d does not start with a comment naming chat.yaml or consumer.yaml", s.line)
				}
				if err != nil {
					t.Errorf("%s line %d: the snippet does not load:\n%s\n%v", name, s.line, s.text, err)
				}
			})
		}
	}
	if counts["README.md"] != counts["README.zh-CN.md"] {
		t.Errorf("README.md has %d yaml snippets, README.zh-CN.md %d: both walk the same path", counts["README.md"], counts["README.zh-CN.md"])
	}
}
