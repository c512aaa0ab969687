// Command ferry is the Ferry server, worker and command-line client.
package main

import (
	"context"
	"os"

	"github.com/ferry-migrate/ferry/internal/cli"
)

func main() {
	os.Exit(cli.Execute(context.Background(), os.Args[1:]))
}
