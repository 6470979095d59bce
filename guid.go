package ringtun

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// GUID identifies an adapter, as in Wintun. ringtun keeps it in the
// interface alias, so it survives across processes.
type GUID [16]byte

// NewGUID returns a random (version 4) GUID.
func NewGUID() GUID {
	var g GUID
	rand.Read(g[:])
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// String formats g as {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}, bytes in order.
func (g GUID) String() string {
	h := hex.EncodeToString(g[:])
	return "{" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] + "}"
}

// ParseGUID parses the form String returns, with or without braces, in
// either case.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	t := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if len(t) != 36 || len(t) == len(s)-1 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
		return g, fmt.Errorf("ringtun: invalid GUID %q", s)
	}
	h := t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:36]
	if _, err := hex.Decode(g[:], []byte(h)); err != nil {
		return g, fmt.Errorf("ringtun: invalid GUID %q", s)
	}
	return g, nil
}
