package control

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ringtun/ringtun/internal/errs"
	"github.com/ringtun/ringtun/internal/guid"
)

// MaxNameLen is the longest interface name Linux takes (IFNAMSIZ-1).
const MaxNameLen = 15

// MaxTunnelTypeLen keeps the alias under the kernel's 255 bytes.
const MaxTunnelTypeLen = 128

// CheckName applies the kernel's rules for interface names
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or white
// space, where the kernel's white space includes byte 0xA0 (no-break
// space in Latin-1, and so the second byte of "à" and others in UTF-8);
// ringtun also refuses control characters. It refuses '%' too: the kernel
// takes a name with '%' as a template such as "tun%d" and makes up another
// name from it, so the adapter would not get the name asked for.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen || name == "." || name == ".." {
		return fmt.Errorf("%w: %q must be 1 to %d bytes and not . or ..", errs.InvalidName, name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '/' || c == ':' || c <= ' ' || c == 0x7f || c == 0xa0:
			return fmt.Errorf("%w: %q has a byte the kernel refuses (%#02x)", errs.InvalidName, name, c)
		case c == '%':
			return fmt.Errorf("%w: %q has a %%, which the kernel takes as a name template", errs.InvalidName, name)
		}
	}
	return nil
}

// CheckTunnelType refuses tunnel types that do not fit the alias or that
// would break its parsing.
func CheckTunnelType(t string) error {
	if len(t) > MaxTunnelTypeLen || !utf8.ValidString(t) || strings.ContainsFunc(t, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: tunnel type %q must be at most %d bytes of printable UTF-8", errs.InvalidName, t, MaxTunnelTypeLen)
	}
	return nil
}

// aliasPrefix starts the interface alias of every ringtun adapter.
const aliasPrefix = "ringtun/1 "

// Alias is the interface alias in which ringtun keeps m:
// "ringtun/1 {guid} persistent|transient tunnel type".
func (m Meta) Alias() string {
	life := "transient"
	if m.Persistent {
		life = "persistent"
	}
	return aliasPrefix + m.GUID.String() + " " + life + " " + m.TunnelType
}

// ParseAlias reads an alias written by Alias, and reports false for any
// other.
func ParseAlias(s string) (Meta, bool) {
	var m Meta
	rest, ok := strings.CutPrefix(s, aliasPrefix)
	if !ok {
		return m, false
	}
	id, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return m, false
	}
	life, tunnelType, ok := strings.Cut(rest, " ")
	if !ok || (life != "persistent" && life != "transient") {
		return m, false
	}
	g, err := guid.Parse(id)
	if err != nil {
		return m, false
	}
	return Meta{GUID: g, Persistent: life == "persistent", TunnelType: tunnelType}, true
}
