package hub

import (
	"errors"
	"net"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"
)

// mqttOptions turns on the embedded server's MQTT listener (MQTT 3.1.1)
// when the configuration asks for it. MQTT clients are NATS clients by
// another door: they log in as the hub's users (user name and password;
// users with an nkey alone cannot), get the same permissions, and connect
// over TLS whenever NATS clients must; topics map to subjects (cams/front/
// motion is cams.front.motion). It runs after TLS is set up.
func (s *Server) mqttOptions(opts *server.Options) error {
	if s.cfg.MQTT == "" {
		return nil
	}
	host, port, err := splitHostPort(s.cfg.MQTT)
	if err != nil {
		return err
	}
	opts.MQTT.Host, opts.MQTT.Port = host, port
	if opts.TLSConfig != nil {
		opts.MQTT.TLSConfig, opts.MQTT.TLSTimeout = opts.TLSConfig.Clone(), opts.TLSTimeout
	}
	opts.MQTT.JsDomain = s.cfg.Domain
	return nil
}

// MQTTAddr is the MQTT listener's address ("" when it is off).
func (s *Server) MQTTAddr() string {
	if s.ns == nil || s.cfg.MQTT == "" || s.opts == nil {
		return ""
	}
	host, _, _ := net.SplitHostPort(s.cfg.MQTT)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(s.opts.MQTT.Port))
}

// validateMQTT checks the MQTT setting.
func (c *Config) validateMQTT() error {
	if c.MQTT == "" {
		return nil
	}
	if c.NATS != "" {
		return errors.New("mqtt: turns on the embedded server's MQTT listener; with --nats, configure that server's mqtt block instead")
	}
	if _, _, err := splitHostPort(c.MQTT); err != nil {
		return errors.New("mqtt " + c.MQTT + ": want host:port, e.g. :1883")
	}
	return nil
}
