// Package config loads a camhub binary's settings through viper: a YAML file
// given by --config, then CAMHUB_* environment variables, then command-line
// flags, each overriding the one before.
//
// The binary's pflag.FlagSet is the schema: every setting is a flag, its
// type checks values from every source, and its default is the default. A
// YAML key or an environment variable is the flag's name (CAMHUB_ and upper
// case with "_" for "-" in the environment). Unknown keys in the file and bad
// values from anywhere are errors that name the key and where it came from.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix starts every environment variable camhub reads.
const EnvPrefix = "CAMHUB"

// FileFlag is the flag that names the YAML file.
const FileFlag = "config"

// ErrConfig is wrapped by every error Load returns for bad settings.
var ErrConfig = errors.New("bad configuration")

// Load parses args into fs, then fills every flag not given on the command
// line from the environment or the YAML file named by --config (or
// CAMHUB_CONFIG). fs must define a string flag named FileFlag. Flags that
// are not settings (such as --help) can be listed in skip.
func Load(fs *pflag.FlagSet, args []string, skip ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	skipped := map[string]bool{FileFlag: true, "help": true}
	for _, s := range skip {
		skipped[s] = true
	}

	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()

	file := fs.Lookup(FileFlag).Value.String()
	if !fs.Changed(FileFlag) {
		if env, ok := os.LookupEnv(envName(FileFlag)); ok {
			file = env
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("%w: reading %s: %v", ErrConfig, file, err)
		}
		var unknown []string
		for _, k := range v.AllKeys() {
			if head, _, ok := strings.Cut(k, "."); ok {
				// a YAML map under a flag that reads JSON
				if f := fs.Lookup(head); f != nil && f.Value.Type() == "json" {
					k = head
				}
			}
			if f := fs.Lookup(k); f == nil || skipped[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("%w: %s: unknown key %q (known keys: %s)",
				ErrConfig, file, unknown[0], strings.Join(knownKeys(fs, skipped), ", "))
		}
	}

	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || skipped[f.Name] || f.Changed {
			return
		}
		if err = v.BindEnv(f.Name); err != nil {
			return
		}
		if !v.IsSet(f.Name) {
			return
		}
		val := valueString(v.Get(f.Name))
		from := fmt.Sprintf("%s: key %q", file, f.Name)
		if _, ok := os.LookupEnv(envName(f.Name)); ok {
			from = "environment variable " + envName(f.Name)
		}
		if serr := f.Value.Set(val); serr != nil {
			shown := fmt.Sprintf("%q", val)
			if f.Value.Type() == "json" {
				// a map of settings may hold what should have been in a
				// secret's file: the error names the key, not the value
				shown = "the value"
			}
			err = fmt.Errorf("%w: %s: %s is not a valid %s: %v", ErrConfig, from, shown, f.Value.Type(), serr)
		}
	})
	return err
}

// envName is the environment variable for flag name.
func envName(name string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func knownKeys(fs *pflag.FlagSet, skipped map[string]bool) []string {
	var keys []string
	fs.VisitAll(func(f *pflag.Flag) {
		if !skipped[f.Name] {
			keys = append(keys, f.Name)
		}
	})
	return keys
}

// valueString turns a value from YAML or the environment into the text a
// flag parses. YAML lists become comma-separated lists, YAML maps JSON (for
// flags of type "json"; viper lower-cases their keys).
func valueString(x any) string {
	switch x := x.(type) {
	case map[string]any:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// Bytes is a pflag.Value holding a size in bytes, written as "1GiB",
// "512MB", "300000" and the like.
type Bytes int64

// String implements pflag.Value.
func (b *Bytes) String() string { return humanize.IBytes(uint64(*b)) }

// Set implements pflag.Value.
func (b *Bytes) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("not a size such as 1GiB or 512MB")
	}
	if n > 1<<62 {
		return fmt.Errorf("too large")
	}
	*b = Bytes(n)
	return nil
}

// Type implements pflag.Value.
func (b *Bytes) Type() string { return "size" }
