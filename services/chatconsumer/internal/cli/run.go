package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/activitychat/chat/services/chatconsumer/internal/app"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
)

// shutdownGrace is how much longer than Messaging.DrainTimeout shutdown may
// take before the process gives up waiting and exits with ExitError.
const shutdownGrace = 10 * time.Second

// runCmd runs the consumer until ctx is done, then drains and returns nil.
func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	file := fs.String("f", "etc/consumer.yaml", "the configuration `file`")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("run: unexpected argument %q", pos[0])
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg, stderr)
	a, err := app.Start(cfg, app.Options{Logger: log})
	if err != nil {
		return err
	}
	a.Banner(stdout)
	// Bound shutdown: once ctx is done, the process must be gone within the
	// drain timeout plus a grace period.
	watchdog := make(chan *time.Timer, 1)
	stop := context.AfterFunc(ctx, func() {
		log.Info("shutting down: draining in-flight events", slog.Duration("drain_timeout", cfg.Messaging.DrainTimeout))
		watchdog <- time.AfterFunc(cfg.Messaging.DrainTimeout+shutdownGrace, func() {
			log.Error("shutdown took too long; exiting")
			os.Exit(ExitError)
		})
	})
	defer func() {
		if !stop() {
			(<-watchdog).Stop()
		}
	}()
	if err := a.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
