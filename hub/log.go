package hub

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats-server/v2/server"
)

// natsLogger writes the embedded nats-server's log through slog. Its notices
// (start-up banners and the like) go to debug: the hub logs its own summary.
// Fatal errors (such as a port in use) are also passed to fatal, if there
// is room, so start-up can fail at once with the server's reason.
type natsLogger struct {
	log   *slog.Logger
	fatal chan string
}

var _ server.Logger = natsLogger{}

func (l natsLogger) logf(level slog.Level, format string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l natsLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l natsLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l natsLogger) Fatalf(format string, v ...any) {
	l.logf(slog.LevelError, format, v)
	select {
	case l.fatal <- fmt.Sprintf(format, v...):
	default:
	}
}
func (l natsLogger) Errorf(format string, v ...any) { l.logf(slog.LevelError, format, v) }
func (l natsLogger) Debugf(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l natsLogger) Tracef(format string, v ...any) { l.logf(slog.LevelDebug-4, format, v) }
