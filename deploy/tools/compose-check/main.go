// compose-check loads a Compose file with compose-go, the loader Docker Compose itself uses:
// schema validation, interpolation, merge keys, profiles and dependency consistency, with no
// Docker engine. It prints the resulting project as JSON, for tests to inspect.
//
//	compose-check [-profile NAME]... [-dotenv=false] FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type profiles []string

func (p *profiles) String() string     { return strings.Join(*p, ",") }
func (p *profiles) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	var active profiles
	flag.Var(&active, "profile", "profile to enable (repeatable)")
	dotenv := flag.Bool("dotenv", true, "read the .env file next to FILE, as docker compose does")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-profile NAME]... [-dotenv=false] FILE")
		os.Exit(2)
	}
	file, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	settings := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithProfiles(active),
	}
	if *dotenv {
		settings = append(settings, cli.WithDotEnv)
	}
	options, err := cli.NewProjectOptions([]string{file}, settings...)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(1)
}
