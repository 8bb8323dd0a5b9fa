package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/vflink/vflink/client"
)

const defaultURL = "http://127.0.0.1:9696"

// Output formats of -o/--output.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// apiFlags are the persistent flags of the admin verbs (network, subnet, port): where the API is,
// how to authenticate and how to print.
type apiFlags struct {
	url    string
	token  string
	output string
}

// addAPIFlags registers --url, --token and -o/--output on cmd as persistent flags.
func addAPIFlags(cmd *cobra.Command) *apiFlags {
	f := &apiFlags{}
	u := os.Getenv("VFLINK_URL")
	if u == "" {
		u = defaultURL
	}
	cmd.PersistentFlags().StringVar(&f.url, "url", u, "vflink API URL (env VFLINK_URL)")
	cmd.PersistentFlags().StringVar(&f.token, "token", os.Getenv("VFLINK_TOKEN"), "auth token sent as X-Auth-Token (env VFLINK_TOKEN)")
	cmd.PersistentFlags().StringVarP(&f.output, "output", "o", outputTable, "output format: table or json")
	return f
}

// client checks the output format and returns a client for the API.
func (f *apiFlags) client() (*client.Client, error) {
	if f.output != outputTable && f.output != outputJSON {
		return nil, fmt.Errorf("invalid --output %q: want table or json", f.output)
	}
	var opts []client.Option
	if f.token != "" {
		opts = append(opts, client.WithToken(f.token))
	}
	c, err := client.New(f.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	return c, nil
}

func (f *apiFlags) json() bool { return f.output == outputJSON }

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// printTable writes a header line and rows aligned in columns.
func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printObject writes one API object: as JSON, or as a Field/Value table of all its JSON fields in
// sorted order, objects and lists rendered as compact JSON.
func printObject(w io.Writer, asJSON bool, v any) error {
	if asJSON {
		return printJSON(w, v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("decode output: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, []string{k, renderValue(m[k])})
	}
	return printTable(w, []string{"Field", "Value"}, rows)
}

// renderValue renders one decoded JSON value for a table cell.
func renderValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

// deleteAll deletes each named object, reports each failure on stderr and fails if any failed.
func deleteAll(cmd *cobra.Command, what string, names []string, del func(nameOrID string) error) error {
	failed := 0
	for _, n := range names {
		if err := del(n); err != nil {
			failed++
			fmt.Fprintf(cmd.ErrOrStderr(), "%s %q: %v\n", what, n, err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d %ss not deleted", failed, len(names), what)
	}
	return nil
}

// orEmpty renders an optional value, "" for nil.
func orEmpty[T any](p *T) string {
	if p == nil {
		return ""
	}
	return fmt.Sprint(*p)
}

// parseKeyValues parses a flag value like "subnet=s1,ip-address=10.0.0.5" whose keys must be among
// allowed; want describes the expected form for the error message.
func parseKeyValues(flag, value string, allowed []string, want string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(value, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid --%s %q: want %s", flag, value, want)
		}
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			return nil, fmt.Errorf("invalid --%s %q: unknown key %q, want %s (keys: %s)", flag, value, k, want, strings.Join(allowed, ", "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("invalid --%s %q: key %q given twice, want %s", flag, value, k, want)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// ifRevision returns the update options for --if-revision when it was given.
func ifRevision(cmd *cobra.Command, rev int64) []client.UpdateOption {
	if cmd.Flags().Changed("if-revision") {
		return []client.UpdateOption{client.IfRevision(rev)}
	}
	return nil
}

// nothingToSet is the error of a set command given no field flag.
func nothingToSet(cmd *cobra.Command, flags []string) error {
	return fmt.Errorf("%s: nothing to set: give at least one of --%s", cmd.CommandPath(), strings.Join(flags, ", --"))
}

// newShowCmd is `<kind> show NAME|ID` for any resource the client can find by name or ID.
func newShowCmd[T any](f *apiFlags, kind string, find func(*client.Client, context.Context, string) (*T, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME|ID",
		Short: "Show one " + kind,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			x, err := find(c, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), f.json(), x)
		},
	}
}

// newDeleteCmd is `<kind> delete NAME|ID...`, reporting each failure.
func newDeleteCmd(f *apiFlags, kind string, del func(context.Context, *client.Client, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME|ID...",
		Short: "Delete " + kind + "s",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			return deleteAll(cmd, kind, args, func(nameOrID string) error { return del(cmd.Context(), c, nameOrID) })
		},
	}
}
