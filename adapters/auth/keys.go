package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// minRSABits rejects RSA keys too short to be trusted with identities.
const minRSABits = 2048

// parsePublicKey reads the first PEM block and names the one algorithm its
// key may verify.
func parsePublicKey(data []byte) (alg string, key any, err error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return "", nil, errors.New("auth: public key: no PEM block")
	}
	switch block.Type {
	case "CERTIFICATE":
		cert, cerr := x509.ParseCertificate(block.Bytes)
		if cerr != nil {
			return "", nil, fmt.Errorf("auth: public key: %w", cerr)
		}
		key = cert.PublicKey
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		return "", nil, fmt.Errorf("auth: public key: %w", err)
	}
	alg, err = algorithmOf(key)
	return alg, key, err
}

// algorithmOf names the one algorithm a public key may verify, and refuses
// any other kind of key (a JWKS's symmetric "oct" key among them).
func algorithmOf(key any) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("auth: RSA public key must have at least %d bits", minRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("auth: ECDSA public key must be on P-256 for ES256")
		}
		return jwt.SigningMethodES256.Alg(), nil
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA.Alg(), nil
	}
	return "", fmt.Errorf("auth: a key of type %T is not an RSA, ECDSA or Ed25519 public key", key)
}
