package neutron

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// listParams are the query parameters that are not filters.
var listParams = map[string]bool{"fields": true, "limit": true, "marker": true, "sort_key": true, "sort_dir": true, "page_reverse": true}

// fieldFunc returns a field's values for filtering, and whether the field is filterable.
type fieldFunc[T any] func(*T, string) ([]string, bool)

// writeList filters items by the query (each parameter a field; several values of one field are
// alternatives), sorts them (sort_key, sort_dir; ID order by default and as the last key), pages
// them (limit, marker, page_reverse) and projects fields=.
func writeList[T any](w http.ResponseWriter, r *http.Request, plural string, items []T, field fieldFunc[T]) error {
	q := r.URL.Query()
	items, err := filterTags(items, q) // tags, tags-any, not-tags, not-tags-any (tags.go)
	if err != nil {
		return err
	}
	type filter struct {
		name string
		vals []string
	}
	var filters []filter
	for k, vs := range q {
		if listParams[k] || tagParams[k] {
			continue
		}
		if len(items) > 0 {
			if _, ok := field(&items[0], k); !ok {
				return badRequest("%s is not a valid filter for %s.", k, plural)
			}
		}
		filters = append(filters, filter{k, vs})
	}
	sort.Slice(filters, func(i, j int) bool { return filters[i].name < filters[j].name })
	out := items[:0:0]
	for i := range items {
		ok := true
		for _, f := range filters {
			got, _ := field(&items[i], f.name)
			if !matchAny(got, f.vals) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, items[i])
		}
	}
	if err := sortItems(out, q, field); err != nil {
		return err
	}
	reverse := strings.EqualFold(q.Get("page_reverse"), "true")
	if reverse {
		slices.Reverse(out)
	}
	resp := map[string]any{}
	if marker := q.Get("marker"); marker != "" {
		for i := range out {
			if id, _ := field(&out[i], "id"); len(id) == 1 && id[0] == marker {
				out = out[i+1:]
				break
			}
		}
	}
	if ls := q.Get("limit"); ls != "" {
		n, err := strconv.Atoi(ls)
		if err != nil || n < 0 {
			return badRequest("limit %q is not a non-negative integer.", ls)
		}
		if n > 0 && len(out) > n {
			out = out[:n]
			last, _ := field(&out[n-1], "id")
			nq := url.Values{}
			for k, v := range q {
				nq[k] = v
			}
			nq.Set("marker", last[0])
			rel := "next"
			if reverse {
				rel = "previous"
			}
			resp[plural+"_links"] = []map[string]string{{"rel": rel, "href": r.URL.Path + "?" + nq.Encode()}}
		}
	}
	if reverse {
		slices.Reverse(out) // a page before the marker still reads in the sort order
	}
	fields := requestedFields(q)
	if len(fields) == 0 {
		resp[plural] = out
		writeJSON(w, http.StatusOK, resp)
		return nil
	}
	proj := make([]map[string]json.RawMessage, len(out))
	for i := range out {
		proj[i] = project(out[i], fields)
	}
	resp[plural] = proj
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// writeOne answers a show request, honouring fields=.
func writeOne(w http.ResponseWriter, r *http.Request, singular string, v any) error {
	fields := requestedFields(r.URL.Query())
	if len(fields) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{singular: v})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{singular: project(v, fields)})
	return nil
}

func requestedFields(q url.Values) []string {
	var out []string
	for _, f := range q["fields"] {
		for _, p := range strings.Split(f, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func project(v any, fields []string) map[string]json.RawMessage {
	b, _ := json.Marshal(v)
	var all map[string]json.RawMessage
	json.Unmarshal(b, &all)
	out := make(map[string]json.RawMessage, len(fields))
	for _, f := range fields {
		if x, ok := all[f]; ok {
			out[f] = x
		}
	}
	return out
}

func matchAny(got, want []string) bool {
	for _, g := range got {
		for _, w := range want {
			if g == w || (isBool(w) && strings.EqualFold(g, w)) {
				return true
			}
			// ip-substring-filtering: fixed_ips=ip_address_substr=10.0.0
			if sub, ok := strings.CutPrefix(w, "ip_address_substr="); ok {
				if ip, ok := strings.CutPrefix(g, "ip_address="); ok && strings.Contains(ip, sub) {
					return true
				}
			}
		}
	}
	return false
}

func isBool(s string) bool { return strings.EqualFold(s, "true") || strings.EqualFold(s, "false") }

// sortItems orders items by the query's sort_key/sort_dir pairs, as Neutron's sorting extension:
// as many directions as keys (asc or desc), each key a field of the resource; numbers compare
// as numbers. The ID breaks ties, so pages are stable.
func sortItems[T any](items []T, q url.Values, field fieldFunc[T]) error {
	keys, dirs := q["sort_key"], q["sort_dir"]
	if len(keys) == 0 {
		if len(dirs) > 0 {
			return badRequest("sort_dir given without sort_key.")
		}
		return nil
	}
	if len(dirs) > 0 && len(dirs) != len(keys) {
		return badRequest("The number of sort_keys (%d) and sort_dirs (%d) must be the same.", len(keys), len(dirs))
	}
	desc := make([]bool, len(keys))
	for i, d := range dirs {
		switch strings.ToLower(d) {
		case "asc":
		case "desc":
			desc[i] = true
		default:
			return badRequest("%s is an invalid value for sort_dir; valid values are: asc, desc.", clip(d))
		}
	}
	if len(items) > 0 {
		for _, k := range keys {
			if _, ok := field(&items[0], k); !ok {
				return badRequest("%s is an invalid attribute for sort_key.", clip(k))
			}
		}
	}
	val := func(it *T, k string) string {
		v, _ := field(it, k)
		return strings.Join(v, ",")
	}
	sort.SliceStable(items, func(i, j int) bool {
		for n, k := range keys {
			if c := compareValues(val(&items[i], k), val(&items[j], k)); c != 0 {
				return (c < 0) != desc[n]
			}
		}
		return val(&items[i], "id") < val(&items[j], "id")
	})
	return nil
}

func compareValues(a, b string) int {
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	if ea == nil && eb == nil {
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}
	return strings.Compare(a, b)
}
