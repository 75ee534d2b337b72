package ops

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// HealthcheckUsage is the help of the healthcheck command of hub, agent
// and viewer; %[1]s is the program's name.
const HealthcheckUsage = `%[1]s healthcheck - ask a running %[1]s whether it is healthy

Usage:
  %[1]s healthcheck [ADDR]

Gets /healthz from the %[1]s listening on ADDR (its --http): a port (9100),
host:port (:9100, 127.0.0.1:9100) or a URL (https://127.0.0.1:8443/healthz).
A host left out, or 0.0.0.0 or ::, is this machine (127.0.0.1). Without ADDR
it uses $CAMHUB_HTTP, the --http the %[1]s itself reads from the environment.
An https URL is not verified: the check talks to this machine and reads
nothing but the status. Meant for container health checks (the images have
no shell, curl or wget):

  HEALTHCHECK CMD ["%[1]s", "healthcheck", "9100"]

Exit status: 0 healthy (200 within 3 s), 1 not healthy or not reachable
(the reason on stderr), 2 bad arguments.
`

// HealthcheckTimeout bounds one check: connection, request and answer.
const HealthcheckTimeout = 3 * time.Second

// Healthcheck is the healthcheck command of program prog (hub, agent,
// viewer): args are its arguments after "healthcheck". It returns the
// exit status.
func Healthcheck(ctx context.Context, prog string, args []string, stdout, stderr io.Writer) int {
	addr := os.Getenv("CAMHUB_HTTP")
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		fmt.Fprintf(stdout, HealthcheckUsage, prog)
		return 0
	case len(args) == 1:
		addr = args[0]
	case len(args) > 1:
		fmt.Fprintf(stderr, "%s healthcheck: one address at most (%s healthcheck --help)\n", prog, prog)
		return 2
	}
	u, err := HealthURL(addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s healthcheck: %v (%s healthcheck --help)\n", prog, err, prog)
		return 2
	}
	if err := CheckHealth(ctx, u); err != nil {
		fmt.Fprintf(stderr, "%s healthcheck: %v\n", prog, err)
		return 1
	}
	return 0
}

// HealthURL turns a healthcheck address (port, host:port or URL) into the
// URL of its /healthz.
func HealthURL(addr string) (*url.URL, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return nil, errors.New("no address: give the --http address (e.g. 9100 or :9100), or set CAMHUB_HTTP")
	}
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return nil, err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("%q: not an http or https URL", addr)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("%q: no host", addr)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/healthz"
		}
		u.Host = loopbackIfAny(u.Host)
		return u, nil
	}
	host, port := "", addr
	if strings.Contains(addr, ":") {
		var err error
		if host, port, err = net.SplitHostPort(addr); err != nil {
			return nil, err
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("%q: not a port, host:port or URL", addr)
	}
	return &url.URL{Scheme: "http", Host: loopbackIfAny(net.JoinHostPort(host, port)), Path: "/healthz"}, nil
}

// loopbackIfAny replaces a missing or wildcard host (what a listen address
// has) with 127.0.0.1.
func loopbackIfAny(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport // no port: the scheme's
	}
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// CheckHealth gets u and returns nil if it answers 200 within
// HealthcheckTimeout.
func CheckHealth(ctx context.Context, u *url.URL) error {
	ctx, cancel := context.WithTimeout(ctx, HealthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: &http.Transport{
		Proxy: nil, // never through a proxy from the environment
		// The program checks itself: only the status is read.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
