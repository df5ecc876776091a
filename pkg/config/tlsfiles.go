package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// The TLS files every transport takes (Kafka, Consul, gRPC) are read and
// checked here, so a missing file, a file without a PEM certificate or a
// certificate that does not match its key is the same configuration error
// whichever transport names it: the variable (or flag) and the path, never
// a file's content. transport is an infraerr transport name for the
// error's context.

// ReadNamedFile reads the file a variable names; the error names both and
// the operating system's reason.
func ReadNamedFile(transport, name, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		reason := "cannot be read"
		var pe *fs.PathError
		if errors.As(err, &pe) {
			reason += " (" + pe.Err.Error() + ")"
		}
		return nil, configErr(transport, fmt.Sprintf("%s %s %s", name, path, reason), err)
	}
	return b, nil
}

// LoadCAPool reads a file of PEM CA certificates named by the variable name.
func LoadCAPool(transport, name, path string) (*x509.CertPool, error) {
	pem, err := ReadNamedFile(transport, name, path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, configErr(transport, fmt.Sprintf("%s %s holds no PEM certificate", name, path), nil)
	}
	return pool, nil
}

// LoadKeyPair reads a PEM certificate and its unencrypted key, the files
// named by certVar and keyVar.
func LoadKeyPair(transport, certVar, certFile, keyVar, keyFile string) (tls.Certificate, error) {
	certPEM, err := ReadNamedFile(transport, certVar, certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := ReadNamedFile(transport, keyVar, keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls says what is wrong in fixed words ("private key does
		// not match public key"), never with the key's bytes.
		return tls.Certificate{}, configErr(transport, fmt.Sprintf("%s %s and %s %s are no PEM certificate and matching unencrypted key (%s)",
			certVar, certFile, keyVar, keyFile, err), err)
	}
	return pair, nil
}
