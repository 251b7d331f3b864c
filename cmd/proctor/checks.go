package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"

	"proctor/analyzers"
	"proctor/rules"
)

// runChecksList: proctor checks list [--json] [--markdown].
func runChecksList(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("checks list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the declarations as JSON")
	markdown := fs.Bool("markdown", false, "print the README's table of checks")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *markdown {
		fmt.Print(rules.Markdown())
		return nil
	}
	listing := rules.List(append(slices.Clone(serviceAnalyzers), analyzers.DefaultAudioAnalyzers...), modelVersions())
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"checks": listing, "engine_settings": rules.EngineSettings()})
	}
	rules.WriteText(os.Stdout, listing)
	return nil
}

// modelVersions builds the default analyzers to read their model versions; without installed
// models the listing still prints, without versions.
func modelVersions() map[string]string {
	v := map[string]string{}
	if set, err := analyzers.NewSet(analyzers.Config{Analyzers: serviceAnalyzers}); err == nil {
		v = set.Versions()
		set.Close()
	} else {
		fmt.Fprintln(os.Stderr, "proctor checks: frame models not loaded:", err)
	}
	if audio, err := analyzers.NewAudioSet(analyzers.AudioConfig{}); err == nil {
		for _, a := range audio.Analyzers() {
			v[a.Name()] = a.Version()
		}
		audio.Close()
	} else {
		fmt.Fprintln(os.Stderr, "proctor checks: audio models not loaded:", err)
	}
	return v
}
