// Package envflag lets every command-line flag also be set from the
// environment: flag --data-dir is read from RSGO_DATA_DIR when it is not on
// the command line. Both binaries follow this rule, so it lives here.
package envflag

import (
	"flag"
	"fmt"
	"strings"
)

// Prefix is the environment prefix of every rsgo flag.
const Prefix = "RSGO_"

// Name returns the environment variable that sets the flag called flagName.
func Name(flagName string) string {
	return Prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Apply runs after fs.Parse: every flag not given on the command line takes
// its value from the environment, when the variable is set. lookup is
// os.LookupEnv in production and a map in tests.
func Apply(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		v, ok := lookup(Name(f.Name))
		if !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("environment %s: %w", Name(f.Name), serr)
		}
	})
	return err
}
