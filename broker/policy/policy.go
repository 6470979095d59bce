// Package policy is ringtund's access policy: which users may have which
// adapters, read from a TOML file. The daemon asks it before every
// privileged action of a client that is not root; every refusal wraps
// errs.AccessDenied (os.ErrPermission) and names the rule and the value
// refused.
//
// A policy is a list of rules:
//
//	[[rule]]
//	users = ["alice", "1000"]     # user names or numeric uids
//	groups = ["vpn"]              # group names or gids; any of the client's groups
//	tunnel_types = ["MyVPN"]      # "*" for any
//	name_prefix = "vpn"           # adapter names must start with it ("" for any)
//	max_adapters = 4              # per uid, across connections; 0: no limit
//	addresses = ["198.18.0.0/16"] # prefixes the adapter's addresses must lie in
//	routes = ["198.18.0.0/16"]    # prefixes its routes must lie in (a default route only if listed)
//	max_mtu = 9000                # 0: any MTU
//	max_ring_capacity = 0x1000000 # 0: any capacity
//	persistent = false            # may the client create persistent adapters
//
// A client is allowed an action if one of the rules that name it (by uid
// or group) allows all of it. No file means no rules: nobody but root.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ringtun/ringtun/broker"

	"github.com/ringtun/ringtun/internal/errs"
)

// Rule is one [[rule]] table.
type Rule struct {
	Users           []string `toml:"users"`
	Groups          []string `toml:"groups"`
	TunnelTypes     []string `toml:"tunnel_types"`
	NamePrefix      string   `toml:"name_prefix"`
	MaxAdapters     int      `toml:"max_adapters"`
	Addresses       []string `toml:"addresses"`
	Routes          []string `toml:"routes"`
	MaxMTU          int      `toml:"max_mtu"`
	MaxRingCapacity uint32   `toml:"max_ring_capacity"`
	Persistent      bool     `toml:"persistent"`

	uids, gids []uint32
	addresses  []netip.Prefix
	routes     []netip.Prefix
}

// Policy is a parsed policy file.
type Policy struct {
	Rules []Rule `toml:"rule"`
	// Source is the file it came from, for messages; "" for none.
	Source string `toml:"-"`
}

// Load reads the policy at path. A missing file is an empty policy.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Policy{Source: path + " (absent: nobody but root)"}, nil
	}
	if err != nil {
		return nil, err
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.Source = path
	return p, nil
}

// Parse parses a policy. Unknown keys, user and group names that do not
// exist, and prefixes that do not parse are errors.
func Parse(data []byte) (*Policy, error) {
	var p Policy
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&p)
	if err != nil {
		return nil, err
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		return nil, fmt.Errorf("unknown key %q", keys[0].String())
	}
	for i := range p.Rules {
		if err := p.Rules[i].resolve(); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i+1, err)
		}
	}
	return &p, nil
}

func (r *Rule) resolve() error {
	for _, u := range r.Users {
		id, err := lookupID(u, func(s string) (string, error) {
			usr, err := user.Lookup(s)
			if err != nil {
				return "", err
			}
			return usr.Uid, nil
		})
		if err != nil {
			return fmt.Errorf("users: %w", err)
		}
		r.uids = append(r.uids, id)
	}
	for _, g := range r.Groups {
		id, err := lookupID(g, func(s string) (string, error) {
			grp, err := user.LookupGroup(s)
			if err != nil {
				return "", err
			}
			return grp.Gid, nil
		})
		if err != nil {
			return fmt.Errorf("groups: %w", err)
		}
		r.gids = append(r.gids, id)
	}
	var err error
	if r.addresses, err = parsePrefixes("addresses", r.Addresses); err != nil {
		return err
	}
	if r.routes, err = parsePrefixes("routes", r.Routes); err != nil {
		return err
	}
	if r.MaxAdapters < 0 || r.MaxMTU < 0 {
		return errors.New("max_adapters and max_mtu must not be negative")
	}
	return nil
}

// lookupID takes a numeric id as it is and looks a name up.
func lookupID(s string, lookup func(string) (string, error)) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), nil
	}
	id, err := lookup(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q has id %q", s, id)
	}
	return uint32(n), nil
}

func parsePrefixes(key string, ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Check decides whether c may do a; it is the daemon's broker.Checker. It returns nil, or an error wrapping
// errs.AccessDenied that names the rule and the value refused.
func (p *Policy) Check(c broker.Peer, a broker.Action) error {
	first := ""
	for i := range p.Rules {
		r := &p.Rules[i]
		if !r.names(c) {
			continue
		}
		why := r.refuse(a)
		if why == "" {
			return nil
		}
		if first == "" {
			first = fmt.Sprintf("rule %d of %s: %s", i+1, p.Source, why)
		}
	}
	if first == "" {
		return fmt.Errorf("%w: uid %d (groups %v) is in no rule of the policy %s", errs.AccessDenied, c.UID, c.GIDs, p.Source)
	}
	return fmt.Errorf("%w: %s %s: %s", errs.AccessDenied, a.What, a.Name, first)
}

// names reports whether the rule is about c.
func (r *Rule) names(c broker.Peer) bool {
	if slices.Contains(r.uids, c.UID) {
		return true
	}
	for _, g := range c.GIDs {
		if slices.Contains(r.gids, g) {
			return true
		}
	}
	return false
}

// refuse returns why the rule does not allow a, or "".
func (r *Rule) refuse(a broker.Action) string {
	switch {
	case !slices.Contains(r.TunnelTypes, "*") && !slices.Contains(r.TunnelTypes, a.TunnelType):
		return fmt.Sprintf("tunnel type %q is not in tunnel_types %q", a.TunnelType, r.TunnelTypes)
	case !strings.HasPrefix(a.Name, r.NamePrefix):
		return fmt.Sprintf("name %q does not start with name_prefix %q", a.Name, r.NamePrefix)
	case a.Persistent && !r.Persistent:
		return "persistent adapters are not allowed (persistent = false)"
	case a.Owned >= 0 && r.MaxAdapters > 0 && a.Owned >= r.MaxAdapters:
		return fmt.Sprintf("the uid has %d adapters, max_adapters is %d", a.Owned, r.MaxAdapters)
	case a.MTU != 0 && r.MaxMTU > 0 && a.MTU > r.MaxMTU:
		return fmt.Sprintf("MTU %d is over max_mtu %d", a.MTU, r.MaxMTU)
	case a.Capacity != 0 && r.MaxRingCapacity > 0 && a.Capacity > r.MaxRingCapacity:
		return fmt.Sprintf("ring capacity %#x is over max_ring_capacity %#x", a.Capacity, r.MaxRingCapacity)
	}
	for _, p := range a.Addresses {
		if !within(p, r.addresses) {
			return fmt.Sprintf("address %v is not in addresses %q", p, r.Addresses)
		}
	}
	for _, p := range a.Routes {
		if !within(p, r.routes) {
			return fmt.Sprintf("route %v is not in routes %q", p, r.Routes)
		}
	}
	return ""
}

// within reports whether p lies inside one of the prefixes: its network
// is inside, and it is at least as long. A default route lies only in a
// default route.
func within(p netip.Prefix, in []netip.Prefix) bool {
	for _, q := range in {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) && q.Addr().Is4() == p.Addr().Is4() {
			return true
		}
	}
	return false
}
