package hub

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"camhub/internal/atomicfile"
)

// Files of a hub's data directory (Config.Data). The directory is mode
// 0700 and every file in it 0600.
const (
	CAFile         = "ca.pem"          // the CA certificate, which join tokens carry
	CAKeyFile      = "ca-key.pem"      // the CA's private key
	ServerCertFile = "server-cert.pem" // the NATS listener's certificate, signed by the CA
	ServerKeyFile  = "server-key.pem"
	UsersFile      = "users.yaml" // cameras and users (see Store)
	URLsFile       = "urls"       // the hub's client URLs, one a line, for join tokens
)

// Validity of what the hub issues. A server certificate is issued again at
// start when it has less than renewBefore left, or its names changed.
const (
	caValidity     = 20 * 365 * 24 * time.Hour
	serverValidity = 2 * 365 * 24 * time.Hour
	renewBefore    = 60 * 24 * time.Hour
)

// CA is the hub's certificate authority: it signs the hub's server
// certificate and the web certificates of viewers.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// EnsureDataDir makes dir (mode 0700) if it does not exist and tightens its
// mode if it does.
func EnsureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// LoadCA reads the CA of data directory dir, making one (ECDSA P-256) if
// there is none.
func LoadCA(dir string) (*CA, error) {
	if err := EnsureDataDir(dir); err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certFile)
	if errors.Is(err, os.ErrNotExist) {
		return newCA(certFile, keyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", certFile, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("CA %s: want an ECDSA key", keyFile)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || !cert.IsCA {
		return nil, fmt.Errorf("CA %s: not a CA certificate", certFile)
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
}

func newCA(certFile, keyFile string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "camhub CA " + host, Organization: []string{"camhub"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := keyToPEM(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first: a certificate without its key is not a CA.
	if err := writeSecret(keyFile, keyPEM); err != nil {
		return nil, err
	}
	if err := writeSecret(certFile, certPEM); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func keyToPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeSecret writes a file of the data directory: atomically, mode 0600.
func writeSecret(path string, data []byte) error {
	return atomicfile.WriteFileMode(path, data, 0o600)
}

// Issue signs a server certificate for names (host names and addresses),
// returning the certificate and key as PEM.
func (ca *CA) Issue(cn string, names []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"camhub"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = keyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// serverCert returns the NATS listener's certificate files in dir, issuing
// them again when they are missing, near expiry, or do not cover names.
// renewed says whether it issued.
func (ca *CA) serverCert(dir string, names []string) (certFile, keyFile string, renewed bool, err error) {
	certFile, keyFile = filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)
	if ca.serverCertValid(certFile, keyFile, names) {
		return certFile, keyFile, false, nil
	}
	host, _ := os.Hostname()
	certPEM, keyPEM, err := ca.Issue("camhub hub "+host, names, serverValidity)
	if err != nil {
		return "", "", false, err
	}
	if err := writeSecret(keyFile, keyPEM); err != nil {
		return "", "", false, err
	}
	if err := writeSecret(certFile, certPEM); err != nil {
		return "", "", false, err
	}
	return certFile, keyFile, true, nil
}

func (ca *CA) serverCertValid(certFile, keyFile string, names []string) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return false
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || time.Until(c.NotAfter) < renewBefore || c.CheckSignatureFrom(ca.Cert) != nil {
		return false
	}
	have := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		have = append(have, ip.String())
	}
	want := canonicalNames(names)
	return slices.Equal(canonicalNames(have), want)
}

// canonicalNames sorts names, with addresses in their canonical form, and
// drops duplicates.
func canonicalNames(names []string) []string {
	var out []string
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		if n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// HostNames are the names and addresses a hub listening on listen is
// reached at, which its certificate covers: the host name, localhost, every
// address of the machine's interfaces (or the listen address if it is
// one), and advertise (host names or addresses).
func HostNames(listen string, advertise []string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	host, _, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		names = append(names, ip.String())
	} else if host != "" && ip == nil {
		names = append(names, host)
	} else {
		names = append(names, interfaceAddrs()...)
	}
	for _, a := range advertise {
		h := a
		if hh, _, err := net.SplitHostPort(a); err == nil {
			h = hh
		}
		names = append(names, h)
	}
	return canonicalNames(names)
}

func interfaceAddrs() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
			out = append(out, n.IP.String())
		}
	}
	return out
}

// ClientURLs are the tls:// URLs join tokens give for a hub listening on
// listen: one for each advertised name (host, or host:port), or else the
// host name and each non-loopback address of the machine.
func ClientURLs(listen string, advertise []string) []string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "0" {
		port = "4222"
	}
	var hosts []string
	if len(advertise) > 0 {
		var urls []string
		for _, a := range advertise {
			if _, _, err := net.SplitHostPort(a); err == nil {
				urls = append(urls, "tls://"+a)
			} else {
				urls = append(urls, "tls://"+net.JoinHostPort(a, port))
			}
		}
		return urls
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		hosts = []string{ip.String()}
	} else if host != "" && ip == nil {
		hosts = []string{host}
	} else {
		if h, err := os.Hostname(); err == nil && h != "" {
			hosts = append(hosts, h)
		}
		for _, a := range interfaceAddrs() {
			if ip := net.ParseIP(a); ip != nil && !ip.IsLoopback() {
				hosts = append(hosts, a)
			}
		}
		if len(hosts) == 0 {
			hosts = []string{"127.0.0.1"}
		}
	}
	var urls []string
	for _, h := range hosts {
		urls = append(urls, "tls://"+net.JoinHostPort(h, port))
	}
	return urls
}

// writeURLs records the hub's client URLs in dir for `hub camera add`.
func writeURLs(dir string, urls []string) error {
	var b bytes.Buffer
	for _, u := range urls {
		b.WriteString(u + "\n")
	}
	return writeSecret(filepath.Join(dir, URLsFile), b.Bytes())
}
