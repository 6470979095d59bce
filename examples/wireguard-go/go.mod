// The wireguard-go example is a module of its own: it needs wireguard-go,
// which the ringtun library does not require of its importers.
module github.com/ringtun/ringtun/examples/wireguard-go

go 1.26.0

require (
	github.com/prometheus/client_golang v1.23.2
	github.com/ringtun/ringtun/prom v0.0.0-00010101000000-000000000000
	github.com/ringtun/ringtun/wgtun v0.0.0-00010101000000-000000000000
	golang.zx2c4.com/wireguard v0.0.0-20260522210424-ecfc5a8d5446
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/jsimonetti/rtnetlink/v2 v2.3.0 // indirect
	github.com/mdlayher/netlink v1.9.0 // indirect
	github.com/mdlayher/socket v0.5.1 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.2 // indirect
	github.com/prometheus/common v0.66.1 // indirect
	github.com/prometheus/procfs v0.16.1 // indirect
	github.com/ringtun/ringtun v0.0.0-00010101000000-000000000000 // indirect
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	golang.org/x/crypto v0.51.0 // indirect
	golang.org/x/net v0.55.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.zx2c4.com/wintun v0.0.0-20230126152724-0fa3db229ce2 // indirect
	google.golang.org/protobuf v1.36.8 // indirect
)

replace (
	github.com/ringtun/ringtun => ../..
	github.com/ringtun/ringtun/prom => ../../prom
	github.com/ringtun/ringtun/wgtun => ../../wgtun
)
