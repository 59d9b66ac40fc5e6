// Package images builds the container images of the end-to-end tests on
// this machine, where no image can be pulled: every image is FROM scratch
// and holds one static Go binary compiled on the host.
//
// An image is tagged with a content hash of its build context (Dockerfile
// and files), so an unchanged binary reuses the image that an earlier run
// built, and a changed one gets a new tag.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/activitychat/chat/test/internal/harness"
)

// ImageLabel marks the images this package builds; its value is the repository.
const ImageLabel = "com.activitychat.e2e.image"

// Logf reports builds and reuses. It is log.Printf unless a test replaces it.
var Logf = log.Printf

// Spec is an image to build: a repository and a build context.
type Spec struct {
	// Repo is the image's repository, for example "activitychat/chat".
	Repo string
	// Dockerfile is the Dockerfile's content.
	Dockerfile []byte
	// Files are the build context's other files.
	Files []File
}

// File is one file of a build context.
type File struct {
	// Name is the path in the build context, for example "chat".
	Name string
	// Mode is the file mode; 0 means 0o644.
	Mode int64
	// Data is the content.
	Data []byte
}

// Ref returns repo:tag, the tag being the first 16 hex digits of the SHA-256
// of the Dockerfile and the files, by name.
func (s Spec) Ref() string {
	h := sha256.New()
	write := func(name string, mode int64, data []byte) {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", name, mode, len(data))
		h.Write(data)
	}
	write("Dockerfile", 0o644, s.Dockerfile)
	for _, f := range s.sortedFiles() {
		write(f.Name, f.mode(), f.Data)
	}
	return s.Repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
}

func (f File) mode() int64 {
	if f.Mode == 0 {
		return 0o644
	}
	return f.Mode
}

func (s Spec) sortedFiles() []File {
	fs := append([]File(nil), s.Files...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	return fs
}

// Build returns the reference of the image s describes, building it only
// when the engine does not have it yet. It never pulls: a Dockerfile that
// needs a base image other than scratch fails.
func Build(ctx context.Context, s Spec) (string, error) {
	ref := s.Ref()
	cli, err := harness.Docker(ctx)
	if err != nil {
		return "", fmt.Errorf("docker: %w", err)
	}
	defer func() { _ = cli.Close() }()

	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		Logf("images: reusing %s", ref)
		return ref, nil
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect %s: %w", ref, err)
	}

	start := time.Now()
	buildCtx, err := s.tar()
	if err != nil {
		return "", err
	}
	res, err := cli.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		PullParent:  false,
		Labels:      map[string]string{ImageLabel: s.Repo},
	})
	if err != nil {
		return "", fmt.Errorf("build %s: %w", ref, err)
	}
	defer func() { _ = res.Body.Close() }()
	if out, err := readBuildOutput(res.Body); err != nil {
		return "", fmt.Errorf("build %s: %w\nthe build context held the Dockerfile and %s\n%s",
			ref, err, s.fileNames(), out)
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("build %s: the engine reported success but has no such image: %w", ref, err)
	}
	Logf("images: built %s in %s", ref, time.Since(start).Round(time.Millisecond))
	prune(ctx, cli, s.Repo, ref)
	return ref, nil
}

func (s Spec) fileNames() string {
	var names []string
	for _, f := range s.sortedFiles() {
		names = append(names, f.Name)
	}
	if len(names) > 12 {
		names = append(names[:12:12], fmt.Sprintf("%d more", len(names)-12))
	}
	return strings.Join(names, ", ")
}

func (s Spec) tar() (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("Dockerfile", 0o644, s.Dockerfile); err != nil {
		return nil, err
	}
	for _, f := range s.sortedFiles() {
		if err := add(f.Name, f.mode(), f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// readBuildOutput reads the engine's JSON message stream to its end and
// returns the build's text output and the error the engine reported.
func readBuildOutput(r io.Reader) (string, error) {
	var out strings.Builder
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out.String(), nil
			}
			return out.String(), fmt.Errorf("read build output: %w", err)
		}
		out.WriteString(m.Stream)
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return out.String(), errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return out.String(), errors.New(m.Error)
		}
	}
}

// prune removes the earlier builds of repo, keeping ref. An image that a
// container still uses stays; errors are ignored, pruning is housekeeping.
func prune(ctx context.Context, cli *testcontainers.DockerClient, repo, ref string) {
	list, err := cli.ImageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("label", ImageLabel+"="+repo),
	})
	if err != nil {
		return
	}
	for _, img := range list.Items {
		keep := false
		for _, t := range img.RepoTags {
			if t == ref {
				keep = true
			}
		}
		if keep {
			continue
		}
		for _, t := range img.RepoTags {
			if _, err := cli.ImageRemove(ctx, t, client.ImageRemoveOptions{}); err == nil {
				Logf("images: removed the earlier build %s", t)
			}
		}
	}
}
