package images

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/activitychat/chat/test/internal/harness"
)

// The nats-server the suite runs, compiled from its Go module.
const (
	NATSServerPackage = "github.com/nats-io/nats-server/v2"
	NATSServerVersion = "v2.15.2"
)

// Repositories of the suite's images.
const (
	NATSRepo         = "activitychat/nats-server"
	ChatRepo         = "activitychat/chat"
	ChatConsumerRepo = "activitychat/chatconsumer"
)

// ErrNoDockerfile reports that a service has no Dockerfile yet, so its image
// cannot be built. Tests treat it as a missing prerequisite.
var ErrNoDockerfile = errors.New("service has no Dockerfile")

//go:embed nats-server.Dockerfile
var natsDockerfile []byte

var (
	mu    sync.Mutex
	cache = map[string]string{}
)

// memo returns the image that build made earlier in this process, or calls
// it. Builds are serialised: the machine has two cores.
func memo(ctx context.Context, key string, build func(context.Context) (string, error)) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if ref, ok := cache[key]; ok {
		return ref, nil
	}
	ref, err := build(ctx)
	if err != nil {
		return "", err
	}
	cache[key] = ref
	return ref, nil
}

// NATS returns activitychat/nats-server:<hash>, nats-server NATSServerVersion
// built with `go install` from its module (its own go.mod pins its
// dependencies; the workspace plays no part), packaged FROM scratch with
// ENTRYPOINT ["/nats-server"] and ports 4222, 6222 and 8222.
func NATS(ctx context.Context) (string, error) {
	return memo(ctx, NATSRepo, func(ctx context.Context) (string, error) {
		dir, err := os.MkdirTemp("", "e2e-nats-server-")
		if err != nil {
			return "", err
		}
		defer func() { _ = os.RemoveAll(dir) }() // a temporary directory: left over at worst

		start := time.Now()
		err = goCmd(ctx, dir, []string{"GOBIN=" + dir, "GOWORK=off"},
			"install", "-trimpath", "-ldflags=-s -w", NATSServerPackage+"@"+NATSServerVersion)
		if err != nil {
			return "", fmt.Errorf("compile nats-server %s: %w", NATSServerVersion, err)
		}
		Logf("images: compiled nats-server %s in %s", NATSServerVersion, time.Since(start).Round(time.Millisecond))
		bin, err := os.ReadFile(filepath.Join(dir, "nats-server"))
		if err != nil {
			return "", err
		}
		return Build(ctx, Spec{
			Repo:       NATSRepo,
			Dockerfile: natsDockerfile,
			Files:      []File{{Name: "nats-server", Mode: 0o755, Data: bin}},
		})
	})
}

// Chat returns activitychat/chat:<hash>, built from services/chat/Dockerfile
// with the binary of ./services/chat; see Service.
func Chat(ctx context.Context) (string, error) { return Service(ctx, "chat", ChatRepo) }

// ChatConsumer returns activitychat/chatconsumer:<hash>, built from
// services/chatconsumer/Dockerfile with the binary of ./services/chatconsumer;
// see Service.
func ChatConsumer(ctx context.Context) (string, error) {
	return Service(ctx, "chatconsumer", ChatConsumerRepo)
}

// Service returns repo:<hash>, the image of services/<name>. It compiles
// ./services/<name> in the repository's workspace into a static linux binary
// named name (CGO_ENABLED=0, -trimpath) and builds services/<name>/Dockerfile
// with the directory services/<name> as the build context (less what its
// .dockerignore excludes), the fresh binary at its top as name, the way
// the Dockerfile's own instructions build it by hand. Without the
// Dockerfile the error wraps ErrNoDockerfile.
func Service(ctx context.Context, name, repo string) (string, error) {
	return memo(ctx, repo, func(ctx context.Context) (string, error) {
		root, err := harness.RepoRoot()
		if err != nil {
			return "", err
		}
		dir := filepath.Join(root, "services", name)
		dockerfilePath := filepath.Join(dir, "Dockerfile")
		dockerfile, err := os.ReadFile(dockerfilePath)
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %s does not exist; the image %s is built from it, with services/%s and a static binary %q at its top as the build context",
				ErrNoDockerfile, dockerfilePath, repo, name, name)
		}
		if err != nil {
			return "", err
		}

		tmp, err := os.MkdirTemp("", "e2e-"+name+"-")
		if err != nil {
			return "", err
		}
		defer func() { _ = os.RemoveAll(tmp) }() // a temporary directory: left over at worst

		start := time.Now()
		out := filepath.Join(tmp, name)
		err = goCmd(ctx, root, nil,
			"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./services/"+name)
		if err != nil {
			return "", fmt.Errorf("compile ./services/%s: %w", name, err)
		}
		Logf("images: compiled ./services/%s in %s", name, time.Since(start).Round(time.Millisecond))
		bin, err := os.ReadFile(out)
		if err != nil {
			return "", err
		}
		files, err := contextFiles(dir, name)
		if err != nil {
			return "", err
		}
		return Build(ctx, Spec{
			Repo:       repo,
			Dockerfile: dockerfile,
			Files:      append(files, File{Name: name, Mode: 0o755, Data: bin}),
		})
	})
}

// maxContext bounds the build context read from a service directory, so
// that a stray database or binary there fails loudly instead of slowly.
const maxContext = 64 << 20

// contextFiles returns the regular files under dir, by slash-separated path
// relative to dir, less the Dockerfile, the file skip and what
// dir/.dockerignore excludes.
func contextFiles(dir, skip string) ([]File, error) {
	var pm *patternmatcher.PatternMatcher
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		patterns, err := ignorefile.ReadAll(f)
		_ = f.Close() // read only: ReadAll reported any failure
		if err != nil {
			return nil, fmt.Errorf("%s/.dockerignore: %w", dir, err)
		}
		if pm, err = patternmatcher.New(patterns); err != nil {
			return nil, fmt.Errorf("%s/.dockerignore: %w", dir, err)
		}
	}
	var files []File
	total := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if pm != nil {
			excluded, err := pm.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if excluded {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if !d.Type().IsRegular() || rel == "Dockerfile" || rel == ".dockerignore" || rel == skip {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if total += len(data); total > maxContext {
			return fmt.Errorf("build context %s is over %d MiB; exclude files with a .dockerignore", dir, maxContext>>20)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, File{Name: rel, Mode: int64(info.Mode().Perm()), Data: data})
		return nil
	})
	return files, err
}

// goCmd runs the go command in dir for a static linux binary of the
// engine's architecture (the host's), with env added to the environment.
func goCmd(ctx context.Context, dir string, env []string, args ...string) error {
	// go test puts GOROOT/bin first on the test's PATH; GOROOT covers a
	// binary run some other way.
	gobin, err := exec.LookPath("go")
	if err != nil {
		root := os.Getenv("GOROOT")
		if root == "" {
			return fmt.Errorf("go is not on PATH and GOROOT is not set: %w", err)
		}
		gobin = filepath.Join(root, "bin", "go")
	}
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
