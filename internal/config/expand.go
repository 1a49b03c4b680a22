package config

import (
	"errors"
	"fmt"
	"strings"
)

// expand replaces ${NAME} in s with the value of the environment variable
// NAME and $$ with a single $. A $ followed by anything else is kept as is.
// An unset or empty variable, a malformed name or an unterminated ${ is an
// error. In expandForbid mode (the workspace layer) every ${NAME} is an
// error: a file in the repository must not be able to copy the user's
// secrets into, say, a URL it controls.
func expand(s string, mode expandMode, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New("unterminated ${ (write $$ for a literal $)")
			}
			name := s[i+2 : i+2+end]
			if !isEnvName(name) {
				return "", fmt.Errorf("${%s}: not a valid environment variable name", name)
			}
			if mode == expandForbid {
				return "", fmt.Errorf("${%s}: the workspace layer cannot read environment variables (write $$ for a literal $)", name)
			}
			v := ""
			if getenv != nil {
				v = getenv(name)
			}
			if v == "" {
				return "", fmt.Errorf("${%s}: environment variable is not set", name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
