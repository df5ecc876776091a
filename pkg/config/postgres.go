package config

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// The PostgreSQL TLS override of spec 11.1.
const (
	EnvPostgresSSLMode   = "POSTGRES_SSL_MODE"
	EnvPostgresSSLCAFile = "POSTGRES_SSL_CA_FILE"
)

// PostgresSSLModes are libpq's sslmode values, weakest first.
var PostgresSSLModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// PostgresSSL is the TLS override every PostgreSQL client of the fleet
// applies to its DSN (spec 11.1): set values win over the DSN's own sslmode
// and sslrootcert; unset ones leave the DSN as it is.
type PostgresSSL struct {
	// Mode is POSTGRES_SSL_MODE, one of PostgresSSLModes, or "".
	Mode string
	// CAFile is POSTGRES_SSL_CA_FILE: the PEM certificates the server's
	// certificate must chain to, or "system" for the system roots (which
	// pgx then checks as verify-full), or "".
	CAFile string
}

// LoadPostgresSSL reads POSTGRES_SSL_MODE and POSTGRES_SSL_CA_FILE and checks
// them on their own: a known mode and a CA file that holds a PEM
// certificate. Whether the DSN then has what its mode needs is Apply's check.
func LoadPostgresSSL() (PostgresSSL, error) {
	p := PostgresSSL{
		Mode:   strings.ToLower(strings.TrimSpace(os.Getenv(EnvPostgresSSLMode))),
		CAFile: strings.TrimSpace(os.Getenv(EnvPostgresSSLCAFile)),
	}
	if p.Mode != "" && !slices.Contains(PostgresSSLModes, p.Mode) {
		return p, dbConfigErr("POSTGRES_SSL_MODE must be one of "+strings.Join(PostgresSSLModes, ", "), nil)
	}
	if p.CAFile != "" && p.CAFile != "system" {
		if err := checkCAFile(EnvPostgresSSLCAFile, p.CAFile); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Apply returns dsn (a postgres:// or postgresql:// URL) with the override's
// sslmode and sslrootcert in place of the DSN's own. A resulting verify-ca
// or verify-full without a CA file is a configuration error, and so is a
// CA file the DSN itself names that cannot be read. Errors never contain
// the DSN.
func (p PostgresSSL) Apply(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", dbConfigErr("OMNIBASE_INFRA_DB_URL is not a valid URL", nil)
	}
	q := u.Query()
	if p.Mode != "" {
		q.Set("sslmode", p.Mode)
	}
	if p.CAFile != "" {
		q.Set("sslrootcert", p.CAFile)
	}
	mode, ca := q.Get("sslmode"), q.Get("sslrootcert")
	if (mode == "verify-ca" || mode == "verify-full") && ca == "" {
		from := "POSTGRES_SSL_MODE"
		if p.Mode == "" {
			from = "the sslmode of OMNIBASE_INFRA_DB_URL"
		}
		return "", dbConfigErr(fmt.Sprintf("%s %s needs a CA file: set POSTGRES_SSL_CA_FILE", from, mode), nil)
	}
	if ca != "" && ca != "system" && p.CAFile == "" {
		if err := checkCAFile("the sslrootcert of OMNIBASE_INFRA_DB_URL:", ca); err != nil {
			return "", err
		}
	}
	if p.Mode == "" && p.CAFile == "" {
		return dsn, nil // untouched, byte for byte
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// ApplyPostgresSSL is LoadPostgresSSL followed by Apply: the DSN a client
// of the fleet connects with.
func ApplyPostgresSSL(dsn string) (string, error) {
	p, err := LoadPostgresSSL()
	if err != nil {
		return "", err
	}
	return p.Apply(dsn)
}

func checkCAFile(name, path string) error {
	pem, err := ReadNamedFile(infraerr.TransportDB, name, path)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return dbConfigErr(fmt.Sprintf("%s %s holds no PEM certificate", name, path), nil)
	}
	return nil
}

func dbConfigErr(msg string, cause error) error { return configErr(infraerr.TransportDB, msg, cause) }
