// The benchmark harness is a module of its own, as the programs that need
// wireguard-go will be, so that the ringtun library does not require
// wireguard-go of its importers.
module github.com/ringtun/ringtun/bench

go 1.26.0

require (
	github.com/ringtun/ringtun v0.0.0-00010101000000-000000000000
	github.com/ringtun/ringtun/wgtun v0.0.0-00010101000000-000000000000
	golang.org/x/crypto v0.51.0
	golang.org/x/sys v0.50.0
	golang.zx2c4.com/wireguard v0.0.0-20260522210424-ecfc5a8d5446
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/jsimonetti/rtnetlink/v2 v2.3.0 // indirect
	github.com/mdlayher/netlink v1.9.0 // indirect
	github.com/mdlayher/socket v0.5.1 // indirect
	golang.org/x/net v0.55.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.zx2c4.com/wintun v0.0.0-20230126152724-0fa3db229ce2 // indirect
)

replace (
	github.com/ringtun/ringtun => ../
	github.com/ringtun/ringtun/wgtun => ../wgtun
)
