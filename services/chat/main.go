// Command chat runs chat.v1.ChatService: Connect, gRPC and gRPC-Web on one
// port, backed by SQLite or PostgreSQL.
//
//	go run ./services/chat -f services/chat/etc/chat.yaml
//
// It stops gracefully on SIGINT or SIGTERM. See package chatserver for the
// config keys and routes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/activitychat/chat/contracts/rules"
	"github.com/activitychat/chat/services/chat/chatserver"
)

func main() {
	configFile := flag.String("f", "etc/chat.yaml", "the config file")
	flag.Parse()
	if err := run(*configFile); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func run(configFile string) error {
	cfg, err := chatserver.Load(configFile)
	if err != nil {
		return err
	}
	logger := chatserver.NewLogger(os.Stderr, cfg.Log).With("service", cfg.Name)
	if cfg.Limits.MaxEventSkew > 0 {
		rules.SetMaxFutureSkew(cfg.Limits.MaxEventSkew)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := chatserver.New(cfg, logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.ListenAndServe(ctx)
}
