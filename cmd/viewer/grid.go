package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/camlist"
	"camhub/internal/cli"
	"camhub/internal/natsconn"
	"camhub/internal/version"
	"camhub/internal/videojpeg"
	"camhub/viewer"
	"camhub/web"
)

// runGrid shows the grid window, or serves it to browsers with --http.
func runGrid(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	if o.http != "" {
		return runWeb(ctx, o, stderr, log)
	}
	if o.httpCert != "" || o.httpKey != "" {
		return cli.UsageError(stderr, "viewer", errors.New("--http-tls-cert and --http-tls-key go with --http"))
	}
	// fail before connecting: without a display Qt aborts the process
	if err := viewer.CheckDisplay(); err != nil {
		log.Error("cannot open the window", "error", err)
		return cli.ExitFailure
	}
	log.Info("camhub viewer starting", "version", version.String(), "cams", strings.Join(o.cams, ","))
	// A rewind reads the buffer at once: it needs the hub up.
	nc, err := natsconn.Dial(o.nats, natsconn.DialOptions{Name: "camhub-viewer", Retry: !o.rewinding(), Auth: o.auth}, log)
	if err != nil {
		log.Error("cannot connect", "error", err)
		return cli.ExitFailure
	}
	defer natsconn.Close(nc)
	cfg := viewer.Config{Cams: o.cams, WindowSize: o.size.Point, Tier: o.tier}
	if o.rewinding() {
		cfg.Rewind, cfg.Speed = o.at.t, o.speed
		if cfg.Rewind.IsZero() {
			cfg.Rewind = time.Now().Add(-o.since)
		}
		if len(cfg.Cams) == 0 {
			if cfg.Cams, err = hubCameras(ctx, nc, log); err != nil {
				log.Error("cannot rewind", "error", err)
				return cli.ExitFailure
			}
		}
	}
	v, err := viewer.New(cfg, nc, log)
	if err != nil {
		log.Error("viewer failed to start", "error", err)
		return cli.ExitFailure
	}
	defer v.Close()
	if err := v.Run(ctx); err != nil {
		log.Error("viewer failed", "error", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// runWeb serves the grid, the HTTP API and metrics to browsers.
func runWeb(ctx context.Context, o *options, stderr io.Writer, log *slog.Logger) int {
	if o.rewinding() {
		return cli.UsageError(stderr, "viewer", errors.New("--since and --at rewind the window; the web page has its own rewind buttons (and ?since= on streams)"))
	}
	log.Info("camhub web viewer starting", "version", version.String(), "cams", strings.Join(o.cams, ","), "http", o.http)
	nc, err := natsconn.Dial(o.nats, natsconn.DialOptions{Name: "camhub-viewer-web", Retry: true, Auth: o.auth}, log)
	if err != nil {
		log.Error("cannot connect", "error", err)
		return cli.ExitFailure
	}
	defer natsconn.Close(nc)
	cfg := web.Config{Addr: o.http, Cams: o.cams, TLSCert: o.httpCert, TLSKey: o.httpKey, Video: videojpeg.Factory}
	tok := o.auth.Token()
	// A joined web viewer serves HTTPS with the certificate the hub's CA
	// issued it (hub user add --web-host), unless told otherwise.
	if tok != nil && tok.HasWeb() && o.httpCert == "" && !o.httpPlain {
		cert, err := tok.WebCertificate()
		if err != nil {
			log.Error("join token", "error", err)
			return cli.ExitFailure
		}
		cfg.Certificate = &cert
	}
	// A hub with users is asked who each visitor is: they log in as one
	// of its users, and see what the hub lets that user see, over the
	// same trust as the viewer's own connection (a join token's pinned
	// CA, or --tls-ca).
	if hubHasUsers(o, nc) {
		cfg.Login = &web.Login{NATS: o.nats, TLSCA: o.auth.TLSCA}
		if tok != nil {
			tc, err := tok.TLSConfig()
			if err != nil {
				log.Error("join token", "error", err)
				return cli.ExitFailure
			}
			cfg.Login.Options = append(cfg.Login.Options, nats.Secure(tc))
		}
	}
	srv, err := web.New(cfg, nc, log)
	if err != nil {
		log.Error("web viewer failed to start", "error", err)
		return cli.ExitFailure
	}
	defer srv.Close()
	if err := srv.Run(ctx); err != nil {
		log.Error("web viewer failed", "error", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// hubHasUsers reports whether the web viewer's hub has users, so that its
// visitors must log in: the viewer was given credentials to connect with
// (a join token's count too), or the hub said it requires them. It errs on
// the side of asking: an open hub that was given credentials asks for
// logins its users can give.
func hubHasUsers(o *options, nc *nats.Conn) bool {
	return o.auth.User != "" || nc.AuthRequired()
}

// hubCameras returns the ids of the cameras the hub knows, for a rewind
// without --cams.
func hubCameras(ctx context.Context, nc *nats.Conn, log *slog.Logger) ([]string, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cams, err := camlist.List(ctx, js, time.Now())
	if err != nil {
		return nil, err
	}
	if len(cams) == 0 {
		return nil, errors.New("the hub knows no cameras yet: nothing to rewind (give --cams to wait for particular ones)")
	}
	ids := make([]string, 0, len(cams))
	for _, c := range cams {
		ids = append(ids, c.ID)
	}
	if len(ids) > viewer.MaxCameras {
		log.Warn("too many cameras for one grid; showing the first by id", "cameras", len(ids), "shown", viewer.MaxCameras)
		ids = ids[:viewer.MaxCameras]
	}
	return ids, nil
}
