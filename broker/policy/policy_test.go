package policy

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringtun/ringtun/broker"
	"github.com/ringtun/ringtun/internal/errs"
)

const sample = `
[[rule]]
users = ["1000"]
groups = ["2000"]
tunnel_types = ["MyVPN"]
name_prefix = "vpn"
max_adapters = 2
addresses = ["198.18.0.0/16", "2001:db8::/32"]
routes = ["198.18.0.0/16"]
max_mtu = 9000
max_ring_capacity = 0x1000000
persistent = false

[[rule]]
users = ["1001"]
tunnel_types = ["*"]
routes = ["0.0.0.0/0"]
persistent = true
`

func mustParse(t *testing.T, s string) *Policy {
	t.Helper()
	p, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	p.Source = "test.toml"
	return p
}

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestCheck(t *testing.T) {
	p := mustParse(t, sample)
	alice := broker.Peer{UID: 1000}
	viaGroup := broker.Peer{UID: 4242, GIDs: []uint32{7, 2000}}
	bob := broker.Peer{UID: 1001}
	ok := broker.Action{What: "create", Name: "vpn0", TunnelType: "MyVPN", Owned: 1, Addresses: pfx("198.18.7.7/24", "2001:db8::1/64"),
		Routes: pfx("198.18.9.0/24"), MTU: 9000, Capacity: 0x1000000}
	for _, c := range []broker.Peer{alice, viaGroup} {
		if err := p.Check(c, ok); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, c := range []struct {
		name   string
		client broker.Peer
		change func(*broker.Action)
		says   string
	}{
		{"no rule", broker.Peer{UID: 5, GIDs: []uint32{6}}, nil, "in no rule"},
		{"tunnel type", alice, func(a *broker.Action) { a.TunnelType = "Other" }, `tunnel type "Other"`},
		{"name prefix", alice, func(a *broker.Action) { a.Name = "wg0" }, `name "wg0"`},
		{"persistent", alice, func(a *broker.Action) { a.Persistent = true }, "persistent"},
		{"max adapters", alice, func(a *broker.Action) { a.Owned = 2 }, "max_adapters is 2"},
		{"MTU", alice, func(a *broker.Action) { a.MTU = 9001 }, "MTU 9001"},
		{"capacity", alice, func(a *broker.Action) { a.Capacity = 0x2000000 }, "ring capacity 0x2000000"},
		{"address", alice, func(a *broker.Action) { a.Addresses = pfx("198.19.0.1/24") }, "address 198.19.0.1/24"},
		{"address wider than allowed", alice, func(a *broker.Action) { a.Addresses = pfx("198.18.0.1/15") }, "address 198.18.0.1/15"},
		{"route", alice, func(a *broker.Action) { a.Routes = pfx("198.19.0.0/24") }, "route 198.19.0.0/24"},
		{"default route", alice, func(a *broker.Action) { a.Routes = pfx("0.0.0.0/0") }, "route 0.0.0.0/0"},
		{"IPv6 route", alice, func(a *broker.Action) { a.Routes = pfx("2001:db8::/64") }, "route 2001:db8::/64"},
	} {
		a := ok
		if c.change != nil {
			c.change(&a)
		}
		err := p.Check(c.client, a)
		if !errors.Is(err, errs.AccessDenied) || !errors.Is(err, os.ErrPermission) {
			t.Errorf("%s: %v, want ErrAccessDenied", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.says) || c.client.UID == 1000 && !strings.Contains(err.Error(), "rule 1 of test.toml") {
			t.Errorf("%s: %q does not say %q and which rule", c.name, err, c.says)
		}
	}
	// The second rule allows what the first does not, for its user only.
	wide := broker.Action{What: "create", Name: "any", TunnelType: "X", Persistent: true, Owned: 50, Routes: pfx("0.0.0.0/0")}
	if err := p.Check(bob, wide); err != nil {
		t.Errorf("bob: %v", err)
	}
	if err := p.Check(alice, wide); err == nil {
		t.Error("alice got bob's rule")
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{
		"[[rule]]\nusers = [1000]",               // not strings
		"[[rule]]\nuser = [\"1000\"]",            // unknown key
		"[[rule]]\nusers = [\"no-such-user-x\"]", // unknown user
		"[[rule]]\ngroups = [\"no-such-grp-x\"]", // unknown group
		"[[rule]]\naddresses = [\"198.18.0.0\"]", // not a prefix
		"[[rule]]\nmax_mtu = -1",
		"[[rule]\n", // not TOML
	} {
		if _, err := Parse([]byte(s)); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	if p := mustParse(t, "[[rule]]\nusers = [\"root\"]\ngroups = [\"root\"]"); p.Rules[0].uids[0] != 0 || p.Rules[0].gids[0] != 0 {
		t.Errorf("names not resolved: %+v", p.Rules[0])
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p, err := Load(filepath.Join(dir, "absent.toml"))
	if err != nil || len(p.Rules) != 0 {
		t.Fatalf("absent file: %v, %v", p, err)
	}
	if err := p.Check(broker.Peer{UID: 1000}, broker.Action{What: "create", Name: "x"}); !errors.Is(err, errs.AccessDenied) {
		t.Fatalf("an absent policy allowed uid 1000: %v", err)
	}
	path := filepath.Join(dir, "p.toml")
	os.WriteFile(path, []byte(sample), 0o644)
	if p, err = Load(path); err != nil || len(p.Rules) != 2 {
		t.Fatalf("Load: %v, %v", p, err)
	}
	os.WriteFile(path, []byte("[[rule]"), 0o644)
	if _, err = Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a bad file: %v", err)
	}
}

// TestExamplePolicy: dist/policy.toml parses, once its example user and
// group names are ones this machine has.
func TestExamplePolicy(t *testing.T) {
	data, err := os.ReadFile("../../dist/policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(`"alice", `, "", `"vpn"]`, `"root"]`).Replace(string(data))
	p := mustParse(t, s)
	if len(p.Rules) != 1 || p.Rules[0].MaxRingCapacity != 0x1000000 || p.Rules[0].NamePrefix != "vpn" {
		t.Fatalf("dist/policy.toml parsed as %+v", p.Rules)
	}
}
