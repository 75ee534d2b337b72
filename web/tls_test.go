package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert makes a CA and a certificate it signs for 127.0.0.1, writes the
// certificate and key as PEM files and returns their paths and the CA.
func writeCert(t *testing.T) (certFile, keyFile string, ca *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "camhub test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	ca = x509.NewCertPool()
	ca.AddCert(caCert)
	return certFile, keyFile, ca
}

// With a certificate the web viewer serves HTTPS (HTTP/2 to clients that
// speak it) and nothing else: a client that trusts the CA gets the API and
// the live stream; one that does not, and plain HTTP, get nothing.
func TestTLS(t *testing.T) {
	_, nc := startHub(t)
	certFile, keyFile, ca := writeCert(t)
	s, err := New(Config{TLSCert: certFile, TLSKey: keyFile}, nc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	base := "https://" + ln.Addr().String()

	trusting := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca}, ForceAttemptHTTP2: true,
	}, Timeout: 10 * time.Second}
	resp, err := trusting.Get(base + "/api/cams")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.HasPrefix(strings.TrimSpace(string(body)), "[") {
		t.Fatalf("GET /api/cams over TLS: %s %s %q", resp.Proto, resp.Status, body)
	}

	// a live frame over the multiplexed stream, through HTTP/2
	cam := newCamera(t, nc, "tls", 160, 120, 1, 0)
	cam.frame()
	sreq, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/stream?cams=tls", nil)
	sresp, err := trusting.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	cam.frame()
	line := make([]byte, 1)
	if _, err := io.ReadFull(sresp.Body, line); err != nil || line[0] != '{' {
		t.Fatalf("/api/stream over TLS: %q %v", line, err)
	}

	// a client that does not trust the CA
	_, err = (&http.Client{Timeout: 10 * time.Second}).Get(base + "/api/cams")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a client without the CA: %v, want an unknown-authority error", err)
	}
	// plain HTTP to the HTTPS port
	resp, err = (&http.Client{Timeout: 10 * time.Second}).Get("http://" + ln.Addr().String() + "/api/cams")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the HTTPS port: %s", resp.Status)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	_, nc := startHub(t)
	certFile, keyFile, _ := writeCert(t)
	for name, cfg := range map[string]Config{
		"cert without key": {TLSCert: certFile},
		"key without cert": {TLSKey: keyFile},
		"missing file":     {TLSCert: certFile + ".gone", TLSKey: keyFile},
		"key for cert":     {TLSCert: keyFile, TLSKey: keyFile},
	} {
		if _, err := New(cfg, nc, quiet()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}
