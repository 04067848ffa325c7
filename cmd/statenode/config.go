package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

// loadConfigFile is the kong.ConfigurationLoader behind --config. The file is
// one JSON object whose keys are flag names ("http-addr"; "http_addr" and
// "httpAddr" are accepted too) and whose values are what the flag would take:
// strings, numbers, booleans, or arrays for list flags ("join": ["a", "b"]).
//
// The returned resolver gives way to environment variables: kong applies
// resolvers after environment variables, which would make the file beat the
// environment. Precedence is flag > environment > file > default, so a flag
// whose STATENODE_* variable is set is left alone here. A flag tagged
// config:"-" is never read from the file (members add --raft-addr names
// another member, not the agent whose file this may be).
func loadConfigFile(r io.Reader) (kong.Resolver, error) {
	values := map[string]any{}
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&values); err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	norm := make(map[string]any, len(values))
	for k, v := range values {
		norm[normalizeKey(k)] = v
	}
	return &configResolver{values: norm}, nil
}

type configResolver struct {
	values map[string]any // keyed by normalizeKey(flag name)
}

// Validate rejects keys that name no flag, so that a typo in the file is an
// error instead of a silently ignored setting.
func (r *configResolver) Validate(app *kong.Application) error {
	known := map[string]bool{}
	_ = kong.Visit(app.Node, func(n kong.Visitable, next kong.Next) error {
		if node, ok := n.(*kong.Node); ok {
			for _, f := range node.Flags {
				known[normalizeKey(f.Name)] = true
			}
		}
		return next(nil)
	})
	var unknown []string
	for k := range r.values {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config file: unknown keys %s", strings.Join(unknown, ", "))
	}
	return nil
}

func (r *configResolver) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	if flag.Tag.Get("config") == "-" {
		return nil, nil
	}
	for _, env := range flag.Envs {
		if _, ok := os.LookupEnv(env); ok {
			return nil, nil // the environment wins over the file
		}
	}
	v, ok := r.values[normalizeKey(flag.Name)]
	if !ok {
		return nil, nil
	}
	switch v := v.(type) {
	case json.Number:
		return v.String(), nil
	case []any: // list flags: join with their separator
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ","), nil
	case bool, string:
		return v, nil
	default:
		return nil, fmt.Errorf("config file: key %q: unsupported value %v", flag.Name, v)
	}
}

// normalizeKey maps "http-addr", "http_addr" and "httpAddr" to "httpaddr".
func normalizeKey(k string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(k))
}
