package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/activitychat/chat/services/chatconsumer/internal/app"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/internal/logging"
)

// shutdownGrace is how much longer than Messaging.DrainTimeout shutdown may
// take before the process gives up waiting and exits with ExitError.
const shutdownGrace = 10 * time.Second

// runCmd runs the consumer until ctx is done, then drains and returns nil.
func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	file := fs.String("f", "", "the configuration `file` (default: the first of "+strings.Join(config.Paths, ", ")+")")
	pos, err := parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return commandHelp(fs, "  chatconsumer [run] [-f FILE]\n",
			"Runs the consumer until SIGINT or SIGTERM, then drains in-flight events and\nexits 0; a second signal exits at once. A dev config also runs NATS and the\nchat service in the process.\n")
	}
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
	log := logging.New(stderr, cfg.Log.Level, logging.DefaultEncoding(cfg.Mode)).With(slog.String("app", cfg.Name))
	log.Info("starting", slog.String("config", cfg.File()))
	a, err := app.StartContext(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		if ctx.Err() != nil {
			// Ctrl-C or SIGTERM while waiting at startup: nothing is
			// running any more, which is what was asked for.
			fmt.Fprintln(stdout, "stopped: interrupted during startup")
			return nil
		}
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
