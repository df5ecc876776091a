package bus

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// GroupID builds a consumer group id per spec 3.4:
// {env}.{service}.{node_name}.{purpose}.{version}, each component normalized
// (lowercase; characters outside [a-z0-9._-] become "_"; runs of [._-]
// collapse to their first character; leading/trailing [._-] stripped). Ids
// longer than 255 characters are cut to 246 and suffixed with "_" and the
// first 8 hex digits of sha256("env|service|node_name|purpose|version") of
// the raw components.
func GroupID(env, service, nodeName, purpose, version string) (string, error) {
	parts := []string{env, service, nodeName, purpose, version}
	norm := make([]string, len(parts))
	for i, p := range parts {
		n := normalizeGroupPart(p)
		if n == "" {
			return "", errors.New("bus: consumer group component " + []string{"env", "service", "node_name", "purpose", "version"}[i] + " is empty after normalization")
		}
		norm[i] = n
	}
	id := strings.Join(norm, ".")
	if len(id) <= 255 {
		return id, nil
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "|")))
	return id[:246] + "_" + hex.EncodeToString(sum[:])[:8], nil
}

func normalizeGroupPart(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	prevSep := false
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			r = '_'
		}
		sep := r == '.' || r == '_' || r == '-'
		if sep && prevSep {
			continue
		}
		prevSep = sep
		b.WriteRune(r)
	}
	return strings.Trim(b.String(), "._-")
}
