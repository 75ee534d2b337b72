package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"camhub/hub"
	"camhub/internal/cli"
)

const cameraUsage = `hub camera - the cameras that may join this hub

Usage:
  hub camera add NAME [--data DIR] [--advertise HOSTS]
  hub camera list [--data DIR]
  hub camera remove NAME [--data DIR]

add prints a join token on stdout, and nothing else: the hub's URLs, its CA
certificate and a credential (a NATS nkey) that may publish camera NAME's
frames and status and nothing else. Give it to the camera's agent:

  hub camera add front >front.join
  agent --join-file front.join --source ...      (on the camera's machine)

The token is a secret: move it as you would a password, and delete the file
once the agent has joined (it keeps its credential in its state directory).
remove revokes the camera: a running hub refuses it at once and closes its
connections. Changes apply to a running hub without a restart.

Flags:
`

const userUsage = `hub user - the viewers and admins of this hub

Usage:
  hub user add NAME [--role viewer|admin] [--cams a,b] [--web-host HOSTS] [--data DIR]
  hub user list [--data DIR]
  hub user remove NAME [--data DIR]

add prints a join token on stdout, and nothing else, for "viewer --join-file"
(the desktop grid, the CLI commands and viewer --http), and a password for
the web login on stderr, once: only its hash is kept. A viewer limited with
--cams sees those cameras alone. --web-host adds to the token a certificate
from the hub's CA for a viewer --http at those names and addresses.

  hub user add family --role viewer --cams front,back >family.join
  viewer --join-file family.join

remove revokes the user: a running hub refuses it at once and closes its
connections. Changes apply to a running hub without a restart.

Flags:
`

// admin runs "hub camera ..." and "hub user ...".
func admin(args []string, stdout, stderr io.Writer) int {
	kind := args[0]
	fs := pflag.NewFlagSet("hub "+kind, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	usage := cameraUsage
	if kind == "user" {
		usage = userUsage
	}
	fs.Usage = func() { fmt.Fprint(stdout, usage, fs.FlagUsages()) }
	data := defaultData
	if d := os.Getenv("CAMHUB_DATA"); d != "" {
		data = d
	}
	fs.StringVar(&data, "data", data, "the hub's data `directory` (also $CAMHUB_DATA)")
	advertise := fs.StringSlice("advertise", nil, "hub URLs in the token: host names or addresses (host or host:port), comma-separated\n"+
		"(default: those the hub recorded at its last start)")
	listen := fs.String("listen", hub.DefaultListen, "the hub's `host:port`, for the port of --advertise hosts without one")
	var role string
	var cams, webHosts []string
	if kind == "user" {
		fs.StringVar(&role, "role", hub.RoleViewer, "viewer (watch cameras) or admin (everything)")
		fs.StringSliceVar(&cams, "cams", nil, "the cameras a viewer may watch, comma-separated (default: all)")
		fs.StringSliceVar(&webHosts, "web-host", nil, "host names or addresses of this user's viewer --http, for its HTTPS certificate")
	}
	name := "hub " + kind
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cli.ExitOK
		}
		return cli.UsageError(stderr, name, err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return cli.ExitUsage
	}
	verb, rest := rest[0], rest[1:]
	want := 1
	if verb == "list" {
		want = 0
	}
	if len(rest) != want {
		return cli.UsageError(stderr, name+" "+verb, fmt.Errorf("want %d argument(s), got %d", want, len(rest)))
	}
	st, err := hub.OpenStore(data)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return cli.ExitFailure
	}
	if len(*advertise) > 0 {
		st.URLs = hub.ClientURLs(*listen, *advertise)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s %s: %v\n", name, verb, err)
		return cli.ExitFailure
	}
	switch verb {
	case "add":
		nu := hub.NewUser{Name: rest[0], Role: hub.RoleAgent, Cams: []string{rest[0]}}
		if kind == "user" {
			if role == hub.RoleAgent {
				return cli.UsageError(stderr, name+" add", errors.New("a camera is added with hub camera add"))
			}
			nu = hub.NewUser{Name: rest[0], Role: role, Cams: cams, WebHosts: webHosts, Password: true}
		}
		tok, pw, err := st.Add(nu)
		if err != nil {
			return fail(err)
		}
		s, err := tok.Encode()
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, s)
		if kind == "camera" {
			fmt.Fprintf(stderr, "camera %q added (hub %s). On its machine: agent --join-file FILE (the token above, saved to FILE).\n",
				nu.Name, strings.Join(tok.URLs, ","))
		} else {
			fmt.Fprintf(stderr, "user %q added, role %s, cameras %s (hub %s). Join with: viewer --join-file FILE (the token above, saved to FILE).\n",
				nu.Name, nu.Role, camsText(nu.Cams), strings.Join(tok.URLs, ","))
			fmt.Fprintf(stderr, "Web login password for %q (shown once, only its hash is kept): %s\n", nu.Name, pw)
		}
		fmt.Fprintln(stderr, "The token is a credential: keep it secret. A running hub accepts it now.")
	case "remove":
		users, err := st.List()
		if err != nil {
			return fail(err)
		}
		for _, u := range users {
			if u.Name == rest[0] && (u.Role == hub.RoleAgent) != (kind == "camera") {
				return fail(fmt.Errorf("%q is a %s: use hub %s remove", u.Name, u.Role, other(kind)))
			}
		}
		if err := st.Remove(rest[0]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "%s %q removed: a running hub refuses it now and has closed its connections.\n", kind, rest[0])
	case "list":
		users, err := st.List()
		if err != nil {
			return fail(err)
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		if kind == "camera" {
			fmt.Fprintln(w, "CAMERA\tNKEY")
		} else {
			fmt.Fprintln(w, "USER\tROLE\tCAMERAS\tLOGIN")
		}
		for _, u := range users {
			if (u.Role == hub.RoleAgent) != (kind == "camera") {
				continue
			}
			if kind == "camera" {
				fmt.Fprintf(w, "%s\t%s\n", u.Name, u.Nkey)
				continue
			}
			var login []string
			if u.Nkey != "" {
				login = append(login, "token")
			}
			if u.Password != "" || u.PasswordFile != "" || u.PasswordEnv != "" {
				login = append(login, "password")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Name, u.Role, camsText(u.Cams), strings.Join(login, "+"))
		}
		w.Flush()
	default:
		return cli.UsageError(stderr, name, fmt.Errorf("unknown command %q: want add, list or remove", verb))
	}
	return cli.ExitOK
}

func camsText(cams []string) string {
	if len(cams) == 0 {
		return "all"
	}
	return strings.Join(cams, ",")
}

func other(kind string) string {
	if kind == "camera" {
		return "user"
	}
	return "camera"
}
