package images

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSpecRef(t *testing.T) {
	base := Spec{Repo: "activitychat/x", Dockerfile: []byte("FROM scratch\n"), Files: []File{
		{Name: "b", Data: []byte("2")},
		{Name: "a", Mode: 0o755, Data: []byte("1")},
	}}
	reordered := base
	reordered.Files = []File{base.Files[1], base.Files[0]}

	tests := []struct {
		name string
		spec Spec
		same bool
	}{
		{"same inputs", base, true},
		{"files in another order", reordered, true},
		{"changed file", Spec{Repo: base.Repo, Dockerfile: base.Dockerfile, Files: []File{{Name: "b", Data: []byte("2")}, {Name: "a", Mode: 0o755, Data: []byte("x")}}}, false},
		{"changed mode", Spec{Repo: base.Repo, Dockerfile: base.Dockerfile, Files: []File{{Name: "b", Data: []byte("2")}, {Name: "a", Data: []byte("1")}}}, false},
		{"changed Dockerfile", Spec{Repo: base.Repo, Dockerfile: []byte("FROM scratch\nUSER 1\n"), Files: base.Files}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.Ref() == base.Ref(); got != tt.same {
				t.Errorf("%s vs %s: same = %v, want %v", tt.spec.Ref(), base.Ref(), got, tt.same)
			}
		})
	}
}

func TestContextFiles(t *testing.T) {
	tests := []struct {
		name         string
		dockerignore string
		want         []string
	}{
		{"no .dockerignore", "", []string{"etc/a.yaml", "etc/b.yaml", "main.go"}},
		{"allow list", "*\n!etc/a.yaml\n", []string{"etc/a.yaml"}},
		{"deny list", "*.go\n", []string{"etc/a.yaml", "etc/b.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"Dockerfile", "main.go", "etc/a.yaml", "etc/b.yaml", "svc"} {
				p := filepath.Join(dir, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.dockerignore != "" {
				if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(tt.dockerignore), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			files, err := contextFiles(dir, "svc")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range files {
				got = append(got, f.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("context %v, want %v", got, tt.want)
			}
		})
	}
}
