package hub

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/natsconn"
)

// MaxReplicas is the most copies of the replay buffer a cluster may keep
// (JetStream's own limit).
const MaxReplicas = 5

// DefaultClusterName is the NATS cluster name hubs use unless told otherwise.
const DefaultClusterName = "camhub"

// JetStream API error codes the hub tells apart while provisioning.
const (
	errCodeClusterNotAvail       = 10008 // JetStream system temporarily unavailable
	errCodeInsufficientResources = 10023 // not enough JetStream servers for the replicas
	errCodeNoPeers               = 10005 // no suitable peers for placement
	errCodeReplicasNotSupported  = 10074 // replicas > 1 not supported in non-clustered mode
)

// validateCluster checks the cluster and leaf settings of c.
func (c *Config) validateCluster() error {
	if err := c.validateSites(); err != nil {
		return err
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		return fmt.Errorf("replicas %d: want 1 to %d", c.Replicas, MaxReplicas)
	}
	if c.NATS != "" {
		if c.Cluster != "" || c.Routes != "" || c.Leaf != "" || c.LeafListen != "" || c.Domain != "" {
			return errors.New("cluster, routes, leaf, leaf-listen and domain configure the embedded server: configure an existing NATS server (--nats) itself")
		}
		return nil // --replicas is checked by the server
	}
	if c.Routes != "" && c.Cluster == "" {
		return errors.New("routes needs --cluster, the host:port this hub's own route listener binds (e.g. --cluster 0.0.0.0:6222)")
	}
	if c.Cluster != "" {
		if _, _, err := splitHostPort(c.Cluster); err != nil {
			return fmt.Errorf("cluster %q: want the host:port of this hub's route listener, e.g. 0.0.0.0:6222: %v", c.Cluster, err)
		}
		if c.ClusterName == "" {
			c.ClusterName = DefaultClusterName
		}
		if strings.ContainsAny(c.ClusterName, " \t.*>") {
			return fmt.Errorf("cluster-name %q: no spaces, dots, * or >", c.ClusterName)
		}
		routes, err := parseURLs(c.Routes, "routes")
		if err != nil {
			return err
		}
		if len(routes) == 0 {
			return errors.New("cluster needs --routes, the route URLs of the cluster's hubs (this one's may be among them), e.g. nats://a:6222,nats://b:6222,nats://c:6222")
		}
	}
	if c.Replicas > 1 && c.Cluster == "" {
		return fmt.Errorf("replicas %d needs a cluster of at least %d hubs: give --cluster and --routes (or use --nats with a NATS cluster)", c.Replicas, c.Replicas)
	}
	if c.LeafListen != "" {
		if _, _, err := splitHostPort(c.LeafListen); err != nil {
			return fmt.Errorf("leaf-listen %q: %v", c.LeafListen, err)
		}
	}
	if c.Leaf != "" {
		if _, err := parseURLs(c.Leaf, "leaf"); err != nil {
			return err
		}
		if c.Domain == "" {
			return errors.New("leaf needs --domain, this site's JetStream domain (e.g. its site name), so the site keeps its own replay buffer")
		}
	}
	if c.Domain != "" && strings.ContainsAny(c.Domain, " \t.*>") {
		return fmt.Errorf("domain %q: no spaces, dots, * or >", c.Domain)
	}
	if c.Auth != "" && (c.Leaf != "" || c.LeafListen != "") {
		return errors.New("auth with leaf or leaf-listen is not supported: leaf links carry no credentials in this version (see docs/SCALING.md)")
	}
	return nil
}

// parseURLs parses comma-separated nats:// URLs.
func parseURLs(s, flag string) ([]*url.URL, error) {
	var out []*url.URL
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		u, err := url.Parse(p)
		if err != nil || u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("%s %q: want URLs such as nats://host:6222, comma-separated", flag, p)
		}
		switch u.Scheme {
		case "nats", "nats-route", "nats-leaf", "tls":
		default:
			return nil, fmt.Errorf("%s %q: scheme %q: want nats://", flag, p, u.Scheme)
		}
		out = append(out, u)
	}
	return out, nil
}

// clusterOptions adds the cluster, leaf node and domain settings of c to the
// embedded server's options.
func (c *Config) clusterOptions(opts *server.Options) error {
	opts.JetStreamDomain = c.Domain
	if c.Cluster != "" {
		host, port, _ := splitHostPort(c.Cluster)
		opts.Cluster = server.ClusterOpts{Name: c.ClusterName, Host: host, Port: port}
		routes, err := parseURLs(c.Routes, "routes")
		if err != nil {
			return err
		}
		opts.Routes = routes
	}
	if c.LeafListen != "" {
		host, port, _ := splitHostPort(c.LeafListen)
		opts.LeafNode.Host, opts.LeafNode.Port = host, port
	}
	if c.Leaf != "" {
		urls, err := parseURLs(c.Leaf, "leaf")
		if err != nil {
			return err
		}
		for _, u := range urls {
			if u.Scheme == "nats-leaf" {
				u.Scheme = "nats"
			}
		}
		opts.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: urls}}
		opts.LeafNode.ReconnectInterval = 2 * time.Second
	}
	return nil
}

// provision creates or updates the streams, waiting for a JetStream cluster
// to elect its leader and for enough servers to hold the replicas, until ctx
// is done.
func (s *Server) provision(ctx context.Context, js jetstream.JetStream, b BufferConfig) error {
	var apiErr error // the last answer from JetStream, if any
	waiting := false
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := Provision(actx, js, b)
		cancel()
		if err == nil {
			return nil
		}
		if !transient(err) {
			return replicasError(err, b.Replicas)
		}
		var ae *jetstream.APIError
		if errors.As(err, &ae) {
			apiErr = err
		}
		if !waiting {
			s.log.Info("waiting for the JetStream cluster", "replicas", b.Replicas, "error", err)
			waiting = true
		}
		select {
		case <-ctx.Done():
			if apiErr != nil {
				return replicasError(apiErr, b.Replicas)
			}
			return fmt.Errorf("the JetStream cluster is not ready (no leader: are most of the hubs in --routes up?): %w", err)
		case <-time.After(250 * time.Millisecond): // retry interval
		}
	}
}

// transient reports whether a provisioning error can go away once the
// cluster has formed: no leader yet, or not yet enough servers.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errCodeClusterNotAvail, errCodeInsufficientResources, errCodeNoPeers:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// replicasError explains an error that comes from asking for more replicas
// than there are JetStream servers.
func replicasError(err error, replicas int) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errCodeInsufficientResources, errCodeNoPeers, errCodeReplicasNotSupported:
			return fmt.Errorf("replicas %d: the NATS cluster has fewer than %d JetStream servers up (or not enough memory/storage on them); start more hubs or lower --replicas: %w",
				replicas, replicas, err)
		}
	}
	return err
}

// NumLeafNodes is the number of leaf node connections of the embedded server.
func (s *Server) NumLeafNodes() int {
	if s.ns == nil {
		return 0
	}
	return s.ns.NumLeafNodes()
}

// LeafAddr is the embedded server's leaf node listener (host:port), empty
// when off.
func (s *Server) LeafAddr() string { return s.leafAddr }

// logLinks logs leaf links coming up and going down, judged against the
// count seen last time (*leaves); it runs on the hub's once-a-second tick.
func (s *Server) logLinks(leaves *int) {
	if s.ns == nil || (s.cfg.Leaf == "" && s.cfg.LeafListen == "") {
		return
	}
	n := s.ns.NumLeafNodes()
	switch {
	case n > *leaves && s.cfg.Leaf != "":
		s.log.Info("leaf link up", "central", natsconn.RedactURL(s.cfg.Leaf))
	case n < *leaves && s.cfg.Leaf != "":
		s.log.Warn("leaf link down: site cameras stay local until it is back", "central", natsconn.RedactURL(s.cfg.Leaf))
	case n != *leaves:
		s.log.Info("site links", "leaf_nodes", n, "before", *leaves)
	}
	*leaves = n
}
