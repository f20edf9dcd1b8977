// Command zdm-nats is nats-server, of the version zdm's go.mod pins,
// with leaders elected within 1-2 s of a node's loss instead of 4-9 s.
// It takes every flag and configuration file nats-server takes. Run it
// on every node of a cluster: its followers wait 1-2 s for heartbeats a
// nats-server leader sends once a second, so a mixed cluster calls
// needless elections.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
)

const usage = `usage: zdm-nats [nats-server flags]

nats-server with shorter Raft timings: a stream whose leader's node is
lost elects a new one within 1-2 s, not nats-server's 4-9 s, so writes
captured by zdm stall for that long at most. Every nats-server flag and
configuration file works as with nats-server, for example:

  zdm-nats -c nats-cluster.conf     run a node
  zdm-nats --signal ldm=<pid>       put a node into lame-duck mode
  zdm-nats -t -c nats-cluster.conf  check a configuration file
  zdm-nats -v                       print nats-server's version
`

func main() {
	setRaft(fast)
	fs := flag.NewFlagSet("zdm-nats", flag.ExitOnError)
	fs.Usage = func() { fmt.Print(usage); os.Exit(0) }
	opts, err := server.ConfigureOptions(fs, os.Args[1:], server.PrintServerAndExit, fs.Usage, server.PrintTLSHelpAndDie)
	if err != nil {
		server.PrintAndDie("zdm-nats: " + err.Error())
	}
	if opts.CheckConfig {
		fmt.Fprintf(os.Stderr, "zdm-nats: configuration file %s is valid\n", opts.ConfigFile)
		os.Exit(0)
	}
	server.RedactArgs(os.Args)
	s, err := server.NewServer(opts)
	if err != nil {
		server.PrintAndDie("zdm-nats: " + err.Error())
	}
	s.ConfigureLogger()
	if err := server.Run(s); err != nil {
		server.PrintAndDie("zdm-nats: " + err.Error())
	}
	s.WaitForShutdown()
}
