package main

import (
	"context"
	"embed"
	"flag"
)

//go:embed completion/gpipe.bash completion/gpipe.zsh completion/gpipe.fish
var completionScripts embed.FS

func completionShells() []string { return []string{"bash", "zsh", "fish"} }

func (a *App) setupCompletion(fs *flag.FlagSet) handler {
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		b, err := completionScripts.ReadFile("completion/gpipe." + args[0])
		if err != nil {
			return usagef("gpipe completion: unknown shell %q (want bash, zsh or fish)", args[0])
		}
		_, err = a.Stdout.Write(b)
		return err
	}
}
