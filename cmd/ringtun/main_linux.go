// Command ringtun shows and manages ringtun adapters from a shell, in the
// style of ip(8) and wg(8):
//
//	ringtun create NAME [--type T] [--guid G] [--persistent] [--address P]… [--route P]… [--mtu N]
//	ringtun delete NAME
//	ringtun list [--type T] [--json]
//	ringtun show NAME [--json]
//	ringtun set NAME [--address P]… [--route P]… [--mtu N]
//	ringtun version
//	ringtun uninstall
//	ringtun completion bash|zsh|fish|powershell
//	ringtun man DIR
//
// It works in-process as root and through ringtund when unprivileged, as
// every ringtun program does. Exit status: 0 ok, 1 error, 2 usage; an
// error is one line on standard error that says what to do.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/ringtun/ringtun"
	"github.com/ringtun/ringtun/netcfg"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func main() { os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr)) }

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

// execute runs the command line args and returns the exit status.
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var u usageError
	if errors.As(err, &u) || isCobraUsage(err) {
		fmt.Fprintf(stderr, "ringtun: %v (see ringtun --help)\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "ringtun: %s%s\n", strings.TrimPrefix(oneLine(err), "ringtun: "), hint(err))
	return 1
}

// isCobraUsage reports whether err is one of cobra's own command-line
// errors (unknown command or flag, wrong argument count), which it returns
// as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least",
		"flag needs an argument", "invalid argument", "required flag"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, " "+p) {
			return true
		}
	}
	return false
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// hint says what to do about an error, after a semicolon.
func hint(err error) string {
	switch {
	case errors.Is(err, ringtun.ErrAccessDenied):
		return "; run as root, or ask for a rule in ringtund's policy (/etc/ringtun/policy.toml)"
	case errors.Is(err, ringtun.ErrAdapterExists):
		return "; choose another name, or delete it first: ringtun delete NAME"
	case errors.Is(err, ringtun.ErrAdapterNotFound):
		return "; ringtun list shows the adapters"
	case errors.Is(err, ringtun.ErrInvalidName):
		return "; a name is at most 15 bytes, without '/', ':', '%' or white space"
	case errors.Is(err, ringtun.ErrAlreadyInitialized):
		return "; a program has a session on it: stop that program first"
	case errors.Is(err, ringtun.ErrInvalidConfig), errors.Is(err, ringtun.ErrRouteConflict):
		return "; check the addresses, routes and MTU given"
	}
	return ""
}

// configFlags are the declarative configuration flags of create and set.
type configFlags struct {
	addresses, routes []string
	mtu               int
}

func (c *configFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&c.addresses, "address", nil, "an address with its prefix length, such as 198.18.7.7/24 (repeat for more; the adapter's whole set)")
	cmd.Flags().StringArrayVar(&c.routes, "route", nil, "a route through the adapter, such as 198.18.8.0/24 (repeat for more; the adapter's whole set)")
	cmd.Flags().IntVar(&c.mtu, "mtu", 0, "the MTU (0: leave it)")
}

// config turns the flags into a ringtun.Config: a flag not given leaves
// that part as it is.
func (c *configFlags) config(cmd *cobra.Command) (*ringtun.Config, error) {
	cfg := &ringtun.Config{MTU: c.mtu}
	var err error
	if cmd.Flags().Changed("address") {
		if cfg.Addresses, err = prefixes("address", c.addresses); err != nil {
			return nil, err
		}
	}
	if cmd.Flags().Changed("route") {
		if cfg.Routes, err = prefixes("route", c.routes); err != nil {
			return nil, err
		}
	}
	if c.mtu < 0 {
		return nil, usageError{fmt.Errorf("--mtu %d: an MTU is positive", c.mtu)}
	}
	return cfg, nil
}

func prefixes(flag string, ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("--%s %q: not a prefix such as 198.18.7.7/24", flag, s)}
		}
		out = append(out, p)
	}
	return out, nil
}

func newRoot(stdout io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "ringtun",
		Short:         "Show and manage ringtun adapters",
		Long:          "ringtun shows and manages ringtun adapters (Wintun-style TUN adapters). It works as root, or unprivileged through ringtund.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(createCmd(), deleteCmd(), listCmd(stdout), showCmd(stdout), setCmd(), versionCmd(stdout),
		uninstallCmd(), manCmd(root))
	return root
}

func createCmd() *cobra.Command {
	var (
		cf         configFlags
		tunnelType string
		guidText   string
		persistent bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an adapter; without --persistent it lives until Ctrl-C",
		Long: "Create an adapter, bring it up and apply the configuration given. A persistent adapter stays after the command; " +
			"any other lives as long as the command, which waits for Ctrl-C (SIGINT or SIGTERM) and then deletes it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cf.config(cmd)
			if err != nil {
				return err
			}
			opts := ringtun.AdapterOptions{Persistent: persistent, Config: cfg}
			if guidText != "" {
				g, err := ringtun.ParseGUID(guidText)
				if err != nil {
					return usageError{fmt.Errorf("--guid %q: %v", guidText, err)}
				}
				opts.GUID = &g
			}
			a, err := ringtun.CreateAdapterWithOptions(args[0], tunnelType, opts)
			if err != nil {
				return err
			}
			if persistent {
				return a.Close()
			}
			defer a.Close()
			fmt.Fprintf(cmd.ErrOrStderr(), "created %s; Ctrl-C deletes it\n", a.Name())
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			<-sig
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&tunnelType, "type", ringtun.DefaultTunnelType, "the tunnel type")
	cmd.Flags().StringVar(&guidText, "guid", "", "the GUID, such as {deadbabe-cafe-beef-0123-456789abcdef} (default: random)")
	cmd.Flags().BoolVar(&persistent, "persistent", false, "keep the adapter after the command ends")
	return cmd
}

func deleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an adapter that has no session",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := ringtun.OpenAdapter(args[0])
			if err != nil {
				return err
			}
			return a.Delete()
		},
	}
}

// adapterView is an adapter as list and show print it.
type adapterView struct {
	Name       string   `json:"name"`
	TunnelType string   `json:"tunnel_type"`
	GUID       string   `json:"guid"`
	Index      uint64   `json:"index"`
	Persistent bool     `json:"persistent"`
	InUse      bool     `json:"in_use"`
	Up         bool     `json:"up"`
	MTU        int      `json:"mtu"`
	Addresses  []string `json:"addresses"`
	RxPackets  uint64   `json:"rx_packets"`
	RxBytes    uint64   `json:"rx_bytes"`
	TxPackets  uint64   `json:"tx_packets"`
	TxBytes    uint64   `json:"tx_bytes"`
}

// views describes the adapters, with what the kernel says of their links.
func views(list []ringtun.AdapterInfo) ([]adapterView, error) {
	nc, err := netcfg.Dial()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	out := make([]adapterView, 0, len(list))
	for _, a := range list {
		v := adapterView{Name: a.Name, TunnelType: a.TunnelType, GUID: a.GUID.String(), Index: a.LUID,
			Persistent: a.Persistent, InUse: a.InUse, Addresses: []string{}}
		if l, err := nc.LinkByIndex(int(a.LUID)); err == nil {
			v.Up, v.MTU = l.Up, l.MTU
			v.RxPackets, v.RxBytes, v.TxPackets, v.TxBytes = l.Stats.RxPackets, l.Stats.RxBytes, l.Stats.TxPackets, l.Stats.TxBytes
		}
		if addrs, err := nc.Addresses(int(a.LUID)); err == nil {
			for _, p := range addrs {
				v.Addresses = append(v.Addresses, p.String())
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func listCmd(stdout io.Writer) *cobra.Command {
	var (
		tunnelType string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the adapters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := ringtun.Adapters()
			if err != nil {
				return err
			}
			if tunnelType != "" {
				list = slices.DeleteFunc(list, func(a ringtun.AdapterInfo) bool { return a.TunnelType != tunnelType })
			}
			vs, err := views(list)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(stdout, vs)
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tTYPE\tGUID\tINDEX\tPERSISTENT\tIN USE\tADDRESSES\tRX PACKETS\tTX PACKETS")
			for _, v := range vs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%v\t%v\t%s\t%d\t%d\n", v.Name, v.TunnelType, v.GUID, v.Index, v.Persistent,
					v.InUse, strings.Join(v.Addresses, ","), v.RxPackets, v.TxPackets)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&tunnelType, "type", "", "only adapters of this tunnel type")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func showCmd(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one adapter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := ringtun.Adapters()
			if err != nil {
				return err
			}
			i := slices.IndexFunc(list, func(a ringtun.AdapterInfo) bool { return a.Name == args[0] })
			if i < 0 {
				return fmt.Errorf("adapter %s: %w", args[0], ringtun.ErrAdapterNotFound)
			}
			vs, err := views(list[i : i+1])
			if err != nil {
				return err
			}
			v := vs[0]
			if asJSON {
				return writeJSON(stdout, v)
			}
			fmt.Fprintf(stdout, "adapter: %s\n  tunnel type: %s\n  guid: %s\n  index: %d\n  persistent: %v\n  in use: %v\n  up: %v\n  mtu: %d\n",
				v.Name, v.TunnelType, v.GUID, v.Index, v.Persistent, v.InUse, v.Up, v.MTU)
			for _, a := range v.Addresses {
				fmt.Fprintf(stdout, "  address: %s\n", a)
			}
			fmt.Fprintf(stdout, "  received: %d packets, %d bytes\n  sent: %d packets, %d bytes\n", v.RxPackets, v.RxBytes, v.TxPackets, v.TxBytes)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func setCmd() *cobra.Command {
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Configure an adapter declaratively (the addresses and routes given become its whole set)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cf.config(cmd)
			if err != nil {
				return err
			}
			a, err := ringtun.OpenAdapter(args[0])
			if err != nil {
				return err
			}
			defer a.Close()
			return a.Configure(*cfg)
		},
	}
	cf.register(cmd)
	return cmd
}

func versionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the library's version, the daemon's when brokered, and the kernel's offloads",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(stdout, "library: %d.%d\n", ringtun.Version>>16, ringtun.Version&0xffff)
			if v, err := ringtun.RunningVersion(); err == nil {
				fmt.Fprintf(stdout, "running: %d.%d (%s)\n", v>>16, v&0xffff, controlPlane())
			} else {
				fmt.Fprintf(stdout, "running: unknown (%v)\n", oneLine(err))
			}
			if o, err := ringtun.KernelOffloads(); err == nil {
				fmt.Fprintf(stdout, "kernel offloads: %s\n", o)
			} else {
				fmt.Fprintf(stdout, "kernel offloads: unknown (%v)\n", oneLine(err))
			}
			return nil
		},
	}
}

// controlPlane says what manages this process's adapters.
func controlPlane() string {
	if d := os.Getenv(ringtun.DaemonEnv); d != "" && d != "off" {
		return "ringtund at " + d
	}
	return "in-process or ringtund, as ringtun chooses"
}

func uninstallCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "uninstall",
		Short: "Delete every ringtun adapter that has no session",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return ringtun.Uninstall() },
	}
}

func manCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write the man pages into DIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			return doc.GenManTree(root, &doc.GenManHeader{Title: "RINGTUN", Section: "8", Source: "ringtun"}, args[0])
		},
	}
}
