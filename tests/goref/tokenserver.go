// tokenserver is a minimal Docker registry token server for rules_ko's tests (standard
// library only): it checks HTTP basic credentials and issues an ES256 JWT, with the signing
// certificate in the x5c header, granting the scopes asked for, as the distribution token
// auth specification describes. docker-registry is configured to trust the certificate.
//
// Usage: tokenserver KEY.pem CERT.pem USER PASS SERVICE ISSUER
// It listens on 127.0.0.1 on a free port and prints "listening 127.0.0.1:PORT".
package main

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func main() {
	if len(os.Args) != 7 {
		fmt.Fprintln(os.Stderr, "usage: tokenserver KEY.pem CERT.pem USER PASS SERVICE ISSUER")
		os.Exit(2)
	}
	keyPEM, err := os.ReadFile(os.Args[1])
	check(err)
	certPEM, err := os.ReadFile(os.Args[2])
	check(err)
	user, pass, service, issuer := os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	kb, _ := pem.Decode(keyPEM)
	keyAny, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		keyAny, err = x509.ParseECPrivateKey(kb.Bytes)
	}
	check(err)
	key := keyAny.(*ecdsa.PrivateKey)
	cb, _ := pem.Decode(certPEM)

	http.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		var access []map[string]interface{}
		for _, scope := range r.URL.Query()["scope"] {
			for _, one := range strings.Split(scope, " ") {
				parts := strings.Split(one, ":")
				if len(parts) != 3 {
					continue
				}
				access = append(access, map[string]interface{}{
					"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ","),
				})
			}
		}
		now := time.Now().Unix()
		header, _ := json.Marshal(map[string]interface{}{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(cb.Bytes)}})
		claims, _ := json.Marshal(map[string]interface{}{
			"iss": issuer, "sub": u, "aud": service, "exp": now + 300, "nbf": now - 10, "iat": now,
			"jti": fmt.Sprint(now, len(access)), "access": access,
		})
		signing := b64(header) + "." + b64(claims)
		sum := sha256.Sum256([]byte(signing))
		rs, ss, err := ecdsa.Sign(rand.Reader, key, sum[:])
		check(err)
		sig := make([]byte, 64)
		rs.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		token := signing + "." + b64(sig)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{"token": token, "access_token": token, "expires_in": 300})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	fmt.Println("listening", l.Addr().String())
	check(http.Serve(l, nil))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokenserver:", err)
		os.Exit(1)
	}
}
