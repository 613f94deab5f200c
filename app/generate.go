package app

import (
	"errors"
	"os"

	"github.com/rampart-go/rampart/app/generator"
)

// generateCmd runs `rampart generate resource|destroy|check` in the
// current directory, which must be the project root.
func generateCmd(args []string, env Env) error {
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	g := &generator.Generator{Root: dir, Out: env.Stdout}
	err = g.Run(args)
	var argErr generator.ArgError
	if errors.As(err, &argErr) {
		return usageError{"generate: " + argErr.Msg}
	}
	return err
}
