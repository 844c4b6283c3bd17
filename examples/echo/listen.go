package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/pollws/pollws/wsconn"
)

// listen opens cfg's listener, bounded by -max-conns and with TLS when
// cfg asks for it, and returns the page's URL. With -tls it prints the
// certificate's fingerprint to out.
//
// wsconn.NewListener's connections are ordinary TCP connections for the
// HTTP server and TLS; once upgraded to a WebSocket over TLS, the reactor
// drives them without a goroutine, as it does plain TCP. It also bounds
// the connections the server holds, whatever they carry.
func listen(cfg config, out io.Writer) (net.Listener, string, error) {
	tcp, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, "", err
	}
	ln, err := wsconn.NewListener(tcp, &wsconn.ListenerOptions{MaxConns: cfg.maxConns})
	if err != nil {
		tcp.Close()
		return nil, "", err
	}
	if !cfg.tls && cfg.certFile == "" {
		return ln, "http://" + ln.Addr().String() + "/", nil
	}
	var cert tls.Certificate
	if cfg.certFile != "" {
		cert, err = tls.LoadX509KeyPair(cfg.certFile, cfg.keyFile)
	} else {
		host, _, _ := net.SplitHostPort(ln.Addr().String())
		var fp string
		cert, fp, err = selfSigned(host, "localhost", "127.0.0.1", "::1")
		if err == nil {
			fmt.Fprintf(out, "self-signed certificate, SHA-256 fingerprint %s\n", fp)
		}
	}
	if err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("certificate: %w", err)
	}
	// HTTP/2 where the client speaks it: http.Server serves it on the
	// TLS connections that chose it, WebSockets included (RFC 8441).
	ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	return ln, "https://" + ln.Addr().String() + "/", nil
}

// wsLimit returns how many WebSocket connections -max-conns admits: all
// but a few, kept for page requests and for refusing upgrades with 503.
// 0 means no limit.
func wsLimit(maxConns int) int {
	if maxConns == 0 {
		return 0
	}
	reserve := min(max(maxConns/10, 1), 16)
	return max(maxConns-reserve, 1)
}

// selfSigned makes a certificate for hosts (names or IP addresses), valid
// for a day, and returns it with its SHA-256 fingerprint.
func selfSigned(hosts ...string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "pollws echo"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	sum := sha256.Sum256(der)
	fp := make([]string, len(sum))
	for i, b := range sum {
		fp[i] = fmt.Sprintf("%02X", b)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, strings.Join(fp, ":"), nil
}
