// Command ringtund is ringtun's privileged daemon: it lets programs
// without CAP_NET_ADMIN have adapters, under a policy.
//
// It is the control plane only. It identifies each client by its socket's
// peer credentials, asks the policy before every privileged action of a
// client that is not root, creates, configures and deletes adapters, and
// for a session passes the client a TUN queue of the adapter. Packets
// never cross it. The ringtun package uses it by itself when the process
// lacks CAP_NET_ADMIN (see RINGTUN_DAEMON in the package documentation).
//
// Usage:
//
//	ringtund [--socket /run/ringtun/ringtund.sock] [--policy /etc/ringtun/policy.toml] [--state /run/ringtun/state.json] [--metrics ADDR]
//
// With --metrics ADDR it serves Prometheus metrics at http://ADDR/metrics:
// ringtund_clients, ringtund_adapters, ringtund_requests_total{op} and
// ringtund_refusals_total{reason}.
//
// SIGHUP reloads the policy (a policy that does not parse is refused and
// the old one kept); SIGINT and SIGTERM stop the daemon, which deletes the
// non-persistent adapters of its clients. Under systemd it takes the
// socket systemd passes (dist/ringtund.socket).
package main
