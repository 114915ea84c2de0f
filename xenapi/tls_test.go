package xenapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// selfSignedTLSServer serves f over TLS with a fresh self-signed
// certificate, as each xapi host has its own, and returns the server and
// the certificate's SHA-256 fingerprint.
func selfSignedTLSServer(t *testing.T, f *fakeXapi) (*httptest.Server, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "xapi host"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(f)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(der)
	return srv, hex.EncodeToString(sum[:])
}

func TestPinnedMemberVouchesForMaster(t *testing.T) {
	for _, tt := range []struct {
		name      string
		vouch     bool
		wantLogin bool
	}{
		{"member reports the master's fingerprint", true, true},
		{"member reports nothing", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			master := newFakeXapi(t)
			masterSrv, masterFP := selfSignedTLSServer(t, master)
			member := newFakeXapi(t)
			memberSrv, memberFP := selfSignedTLSServer(t, member)
			mu, _ := url.Parse(masterSrv.URL)
			member.slaveOf = mu.Host
			if tt.vouch {
				member.thumbprint = "sha-256:" + strings.ToUpper(masterFP)
			}
			c, err := NewClient(memberSrv.URL, WithPinnedCertificate(memberFP))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Login(bg(), "root", "secret", "x")
			if tt.wantLogin {
				if err != nil {
					t.Fatal(err)
				}
				if c.URL() != masterSrv.URL+"/" || master.liveSessions() != 1 {
					t.Fatalf("not logged in at the master: %s", c.URL())
				}
				_ = c.Close(bg())
				return
			}
			if err == nil || !strings.Contains(err.Error(), "not pinned") {
				t.Fatalf("login to an unvouched master: %v", err)
			}
			if master.liveSessions() != 0 {
				t.Fatal("session opened on an unpinned host")
			}
		})
	}
}
