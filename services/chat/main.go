// Command chat runs chat.v1.ChatService: Connect, gRPC and gRPC-Web on one
// port, backed by SQLite or PostgreSQL.
//
//	go run ./services/chat -f services/chat/etc/chat.yaml
//
// Without -f it reads the first of etc/chat.yaml, services/chat/etc/chat.yaml
// and /etc/chat/chat.yaml, so it starts from its folder, the repository root
// or its container image. It binds its port before it opens the database, so
// a port in use fails at once. SIGINT or SIGTERM stops it gracefully, also
// while it waits for the database, with exit code 0; a second signal exits
// at once. See package chatserver for the config keys and routes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/activitychat/chat/contracts/rules"
	"github.com/activitychat/chat/services/chat/chatserver"
	"github.com/activitychat/chat/services/internal/logging"
)

func main() {
	configFile := flag.String("f", "", "the config `file` (default: the first of "+strings.Join(chatserver.Paths, ", ")+")")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so that a second
	// one ends the process at once.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, *configFile, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, configFile string, stderr io.Writer) error {
	cfg, err := chatserver.Load(configFile)
	if err != nil {
		return err
	}
	logger := logging.New(stderr, cfg.Log.Level, cfg.Log.Encoding).With("service", cfg.Name)
	if cfg.Limits.MaxEventSkew > 0 {
		rules.SetMaxFutureSkew(cfg.Limits.MaxEventSkew)
	}
	ln, err := net.Listen("tcp", cfg.ListenOn)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("ListenOn: %s is already in use (is another chat service or chatconsumer running?); %s", cfg.ListenOn, cfg.Hint("ListenOn"))
		}
		return fmt.Errorf("ListenOn: cannot listen on %s: %w; %s", cfg.ListenOn, err, cfg.Hint("ListenOn"))
	}
	srv, err := chatserver.NewContext(ctx, cfg, logger)
	if err != nil {
		_ = ln.Close()
		if ctx.Err() != nil {
			logger.Info("stopped: interrupted during startup")
			return nil
		}
		return err
	}
	err = srv.Serve(ctx, ln)
	return errors.Join(err, srv.Close())
}
