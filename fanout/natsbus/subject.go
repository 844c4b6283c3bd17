package natsbus

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// subject returns the NATS subject of topic under prefix: prefix.t.topic
// when topic is one subject token of letters, digits, '-' and '_';
// otherwise prefix.b. and the topic in unpadded URL-safe base64, so that
// any topic is one token that no wildcard, space or dot splits.
func subject(prefix, topic string) string {
	if isToken(topic) {
		return prefix + ".t." + topic
	}
	return prefix + ".b." + base64.RawURLEncoding.EncodeToString([]byte(topic))
}

// isToken reports whether s is a non-empty run of letters, digits, '-'
// and '_'.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// checkPrefix returns an error for a prefix that is not dot-separated
// tokens.
func checkPrefix(prefix string) error {
	for _, tok := range strings.Split(prefix, ".") {
		if !isToken(tok) {
			return fmt.Errorf("natsbus: subject prefix %q is not dot-separated tokens of letters, digits, '-' and '_'", prefix)
		}
	}
	return nil
}
