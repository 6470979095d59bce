// Package netcfg configures a network interface through rtnetlink:
// addresses, routes, MTU, link state and the interface alias in which
// ringtun keeps an adapter's metadata. Every call needs CAP_NET_ADMIN in
// the interface's network namespace, except the ones that only read.
//
// Address and route setters are declarative: they add what is missing and
// remove what is extra, so that running them twice changes nothing, and an
// error names the item that failed.
package netcfg
