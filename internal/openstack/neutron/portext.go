package neutron

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// The port attributes of Neutron's security-group, allowed-address-pairs, extra_dhcp_opt and
// tag-ports-during-bulk-creation extensions: decoded with the port (decodePortExt), resolved in the
// port's transaction (stagePortExt, secgroup.go) once its network's port security and its MAC are
// known.

// maxAddressPairs is Neutron's max_allowed_address_pair default.
const maxAddressPairs = 10

// portExt is what a port request says about the extension attributes; the OK flags say which
// were given.
type portExt struct {
	sgs     []string
	sgsOK   bool
	pairs   []api.AddressPair // mac_address "" = the port's own
	pairsOK bool
	opts    []dhcpOpt
	optsOK  bool
	tags    []string
	tagsOK  bool
}

// dhcpOpt is one requested extra DHCP option; a nil value removes the option (update).
type dhcpOpt struct {
	name      string
	value     *string
	ipVersion int
}

func decodePortExt(a *attrs, create bool) (x portExt, err error) {
	if x.sgs, x.sgsOK, err = decodeUUIDList(a, "security_groups"); err != nil {
		return x, err
	}
	if x.pairs, x.pairsOK, err = decodeAddressPairs(a); err != nil {
		return x, err
	}
	if x.opts, x.optsOK, err = decodeDHCPOpts(a); err != nil {
		return x, err
	}
	if !create && a.has("tags") {
		return x, badRequest("Cannot update read-only attribute tags")
	}
	if create {
		if x.tags, x.tagsOK, err = decodeTagList(a); err != nil {
			return x, err
		}
	}
	return x, nil
}

// decodeUUIDList reads a list of UUIDs (null: the empty list), as type:uuid_list.
func decodeUUIDList(a *attrs, k string) ([]string, bool, error) {
	if !a.has(k) {
		return nil, false, nil
	}
	if a.isNull(k) {
		return []string{}, true, nil
	}
	var raw []any
	if err := json.Unmarshal(a.m[k], &raw); err != nil {
		return nil, true, badRequest("Invalid input for %s. Reason: '%s' is not a list.", k, clip(string(a.m[k])))
	}
	out := make([]string, 0, len(raw))
	seen := map[string]bool{}
	for _, v := range raw {
		s, ok := v.(string)
		if ok && seen[s] {
			return nil, true, badRequest("Invalid input for %s. Reason: Duplicate items in the list: '%s'.", k, s)
		}
		if _, err := parseUUID(s); !ok || err != nil {
			return nil, true, badRequest("Invalid input for %s. Reason: '%v' is not a valid UUID.", k, v)
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, true, nil
}

func parseUUID(s string) (string, error) {
	s = strings.ReplaceAll(strings.ToLower(s), "-", "")
	if strings.HasPrefix(s, "urn:uuid:") {
		s = s[len("urn:uuid:"):]
	}
	if len(s) != 32 {
		return "", fmt.Errorf("not a UUID")
	}
	for _, ch := range s {
		if !strings.ContainsRune("0123456789abcdef", ch) {
			return "", fmt.Errorf("not a UUID")
		}
	}
	return s, nil
}

// decodeTagList reads a create body's tags (list_of_unique_strings, each at most 255 long).
func decodeTagList(a *attrs) ([]string, bool, error) {
	if !a.has("tags") {
		return []string{}, false, nil
	}
	var raw any
	json.Unmarshal(a.m["tags"], &raw)
	tags, msg := checkTags(raw)
	if msg != "" {
		return nil, true, badRequest("Invalid input for tags. Reason: %s.", msg)
	}
	return tags, true, nil
}

// checkTags is validate_list_of_unique_strings(MAX_TAG_LEN): the message is "" when v is good.
func checkTags(v any) ([]string, string) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Sprintf("'%s' is not a list", pyRepr(v))
	}
	seen := map[string]bool{}
	var dups []string
	for _, e := range l {
		if s, ok := e.(string); ok {
			if seen[s] && !contains(dups, s) {
				dups = append(dups, s)
			}
			seen[s] = true
		}
	}
	if len(dups) > 0 {
		return nil, fmt.Sprintf("Duplicate items in the list: '%s'", strings.Join(dups, ", "))
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Sprintf("'%s' is not a valid string", pyRepr(e))
		}
		if len(s) > maxStr {
			return nil, fmt.Sprintf("'%s' exceeds maximum length of %d", s, maxStr)
		}
		out = append(out, s)
	}
	return out, ""
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// pyRepr prints a decoded JSON value roughly as Python prints it in Neutron's messages.
func pyRepr(v any) string {
	switch t := v.(type) {
	case nil:
		return "None"
	case string:
		return t
	case bool:
		if t {
			return "True"
		}
		return "False"
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = pyQuoted(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = "'" + k + "': " + pyQuoted(t[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func pyQuoted(v any) string {
	if s, ok := v.(string); ok {
		return "'" + s + "'"
	}
	return pyRepr(v)
}

// decodeAddressPairs is Neutron's _validate_allowed_address_pairs (null: the empty list).
func decodeAddressPairs(a *attrs) ([]api.AddressPair, bool, error) {
	const k = "allowed_address_pairs"
	if !a.has(k) {
		return nil, false, nil
	}
	if a.isNull(k) {
		return []api.AddressPair{}, true, nil
	}
	var raw []any
	if err := json.Unmarshal(a.m[k], &raw); err != nil {
		return nil, true, badRequest("Allowed address pairs must be a list.")
	}
	if len(raw) > maxAddressPairs {
		return nil, true, errf(http.StatusBadRequest, "AllowedAddressPairExhausted", "The number of allowed address pair exceeds the maximum %d.", maxAddressPairs)
	}
	out := make([]api.AddressPair, 0, len(raw))
	seen := map[[2]string]bool{}
	for _, e := range raw {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, true, badRequest("Invalid input for %s. Reason: '%s' is not a dictionary.", k, pyRepr(e))
		}
		var p api.AddressPair
		macGiven := false
		if mv, ok := m["mac_address"]; ok {
			mac, _ := mv.(string)
			if !validMAC(mac) {
				return nil, true, badRequest("'%s' is not a valid MAC address", pyRepr(mv))
			}
			p.MACAddress, macGiven = mac, true
		}
		iv, ok := m["ip_address"]
		if !ok {
			return nil, true, errf(http.StatusBadRequest, "AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address")
		}
		ip, _ := iv.(string)
		macKey := "None"
		if macGiven {
			macKey = p.MACAddress
		}
		if seen[[2]string{macKey, ip}] {
			return nil, true, errf(http.StatusBadRequest, "DuplicateAddressPairInRequest", "Request contains duplicate address pair: mac_address %s ip_address %s.", macKey, ip)
		}
		seen[[2]string{macKey, ip}] = true
		var extra []string
		for key := range m {
			if key != "mac_address" && key != "ip_address" {
				extra = append(extra, key)
			}
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			return nil, true, badRequest("Unrecognized attribute(s) '%s'", strings.Join(extra, ", "))
		}
		if msg := checkPairIP(ip, iv); msg != "" {
			return nil, true, badRequest("%s", msg)
		}
		p.IPAddress = ip
		out = append(out, p)
	}
	return out, true, nil
}

// validMAC is validate_mac_address: a unicast or multicast MAC but not all-zero or broadcast.
func validMAC(s string) bool {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || strings.TrimSpace(s) != s {
		return false
	}
	m := hw.String()
	return m != "00:00:00:00:00:00" && m != "ff:ff:ff:ff:ff:ff"
}

// checkPairIP is validate_subnet for a CIDR and validate_ip_address for an address.
func checkPairIP(ip string, raw any) string {
	if strings.Contains(ip, "/") {
		pfx, err := netip.ParsePrefix(ip)
		if err != nil {
			return fmt.Sprintf("'%s' is not a valid IP subnet", pyRepr(raw))
		}
		if pfx.Addr().Is4() && pfx.String() != ip {
			return fmt.Sprintf("'%s' isn't a recognized IP subnet cidr, '%s' is recommended", ip, pfx.Masked())
		}
		return ""
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" {
		return fmt.Sprintf("'%s' is not a valid IP address", pyRepr(raw))
	}
	return ""
}

// decodeDHCPOpts is type:list_of_any_key_specs_or_none over Neutron's EXTRA_DHCP_OPT_KEY_SPECS.
func decodeDHCPOpts(a *attrs) ([]dhcpOpt, bool, error) {
	const k = "extra_dhcp_opts"
	if !a.has(k) || a.isNull(k) {
		return nil, a.has(k), nil
	}
	var raw any
	json.Unmarshal(a.m[k], &raw)
	l, ok := raw.([]any)
	if !ok {
		return nil, true, invalidInput("'%s' is not a list.", pyRepr(raw))
	}
	for i := range l {
		for j := 0; j < i; j++ {
			if jsonEqual(l[i], l[j]) {
				return nil, true, invalidInput("Duplicate items in the list: '%s'.", pyRepr(l[i]))
			}
		}
	}
	out := make([]dhcpOpt, 0, len(l))
	for _, e := range l {
		o, err := checkDHCPOpt(e)
		if err != nil {
			return nil, true, err
		}
		out = append(out, o)
	}
	return out, true, nil
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// checkDHCPOpt matches one option against the two key specs: a blank-able option (router,
// classless-static-route) whose value may be any string or null, or any one-line name of at most
// 64 characters whose value is a one-line non-blank string of at most 255, or null.
func checkDHCPOpt(e any) (dhcpOpt, error) {
	noMatch := invalidInput("No valid key specs matched for: %s.", pyRepr(e))
	m, ok := e.(map[string]any)
	if !ok {
		return dhcpOpt{}, noMatch
	}
	o := dhcpOpt{ipVersion: 4}
	if v, ok := m["ip_version"]; ok {
		n, err := pyInt(v)
		if err != nil {
			return o, invalidInput("'%s' is not an integer.", pyRepr(v))
		}
		m["ip_version"] = float64(n)
		if n != 4 && n != 6 {
			return o, invalidInput("No valid key specs matched for: %s.", pyRepr(m))
		}
		o.ipVersion = n
	}
	for key := range m {
		if key != "opt_name" && key != "opt_value" && key != "ip_version" {
			return o, noMatch
		}
	}
	name, ok1 := m["opt_name"].(string)
	vraw, ok2 := m["opt_value"]
	if !ok1 || !ok2 {
		return o, noMatch
	}
	o.name = name
	if vraw != nil {
		v, ok := vraw.(string)
		if !ok || len(v) > 255 {
			return o, noMatch
		}
		o.value = &v
	}
	if name == "router" || name == "classless-static-route" {
		return o, nil
	}
	oneline := func(s string) bool {
		return strings.TrimSpace(s) != "" && !strings.ContainsAny(s, "\n\r\v\f\x1c\x1d\x1e\x85")
	}
	if len(name) > 64 || !oneline(name) || (o.value != nil && !oneline(*o.value)) {
		return o, noMatch
	}
	return o, nil
}

// pyInt is Python's int() on a JSON value.
func pyInt(v any) (int, error) {
	switch t := v.(type) {
	case float64:
		return int(t), nil
	case bool:
		if t {
			return 1, nil
		}
		return 0, nil
	case string:
		return strconv.Atoi(strings.TrimSpace(t))
	}
	return 0, fmt.Errorf("not an integer")
}

// validOptValue is _is_valid_opt_value: only such options are stored.
func validOptValue(o dhcpOpt) bool {
	if o.name == "router" || o.name == "classless-static-route" {
		return o.value != nil
	}
	return o.value != nil && *o.value != ""
}

// mergeDHCPOpts applies requested options to a port's as Neutron's update does: an option with
// the same name and IP version is changed, or removed by a null value; any other is added. An
// empty request changes nothing.
func mergeDHCPOpts(cur []api.ExtraDHCPOpt, req []dhcpOpt) ([]api.ExtraDHCPOpt, error) {
	out := append([]api.ExtraDHCPOpt(nil), cur...)
	for _, o := range req {
		found := false
		for i := 0; i < len(out); i++ {
			if out[i].OptName == o.name && out[i].IPVersion == o.ipVersion {
				found = true
				if o.value == nil {
					out = append(out[:i], out[i+1:]...)
				} else if validOptValue(o) {
					out[i].OptValue = *o.value
				}
				break
			}
		}
		if !found && validOptValue(o) {
			out = append(out, api.ExtraDHCPOpt{OptName: o.name, OptValue: *o.value, IPVersion: o.ipVersion})
		}
	}
	return out, nil
}

// createDHCPOpts are a new port's options (those with a value; one per name and IP version).
func createDHCPOpts(req []dhcpOpt) ([]api.ExtraDHCPOpt, error) {
	out := []api.ExtraDHCPOpt{}
	for _, o := range req {
		if !validOptValue(o) {
			continue
		}
		for _, e := range out {
			if e.OptName == o.name && e.IPVersion == o.ipVersion {
				return nil, errf(http.StatusConflict, "NeutronDbObjectDuplicateEntry",
					"Failed to create a duplicate ExtraDhcpOpt: for attribute(s) ['port_id', 'opt_name', 'ip_version'] with value(s) None")
			}
		}
		out = append(out, api.ExtraDHCPOpt{OptName: o.name, OptValue: *o.value, IPVersion: o.ipVersion})
	}
	return out, nil
}

// resolvePairs fills each pair's MAC with the port's when none was given, and refuses a pair
// given twice once that is done (Neutron's unique key).
func resolvePairs(pairs []api.AddressPair, mac string) ([]api.AddressPair, error) {
	out := make([]api.AddressPair, len(pairs))
	seen := map[api.AddressPair]bool{}
	for i, p := range pairs {
		if p.MACAddress == "" {
			p.MACAddress = mac
		}
		if seen[p] {
			return nil, errf(http.StatusBadRequest, "DuplicateAddressPairInRequest", "Request contains duplicate address pair: mac_address %s ip_address %s.", p.MACAddress, p.IPAddress)
		}
		seen[p] = true
		out[i] = p
	}
	return out, nil
}

// stagePortExt resolves a port's security groups, allowed address pairs, extra DHCP options and
// tags once p carries its port security and its MAC, as ML2 does, and adds to t what keeps the
// groups in step: for each group the port joins, a compare on the group (deleted meanwhile: the
// retry answers 404) and its idx/sg-ports key; the keys of the groups it leaves are removed.
// old is the port before an update (nil: a create). The default group is created here, before
// the port's transaction and apart from it (ensureDefaultSG is idempotent), so a bulk create
// stages many ports with it.
func (s *Service) stagePortExt(ctx context.Context, c *auth.Context, t *store.Txn, p *api.Port, old *api.Port, x portExt) error {
	// Neutron applies no groups to its own ports (network:*), nor vflink to the binder's device ports
	trusted := strings.HasPrefix(p.DeviceOwner, "network:") || p.DeviceOwner == api.DeviceOwnerDevicePort
	sec := p.PortSecurityEnabled
	var cur, sgs []string
	pairsReq := x.pairsOK && len(x.pairs) > 0
	sgsReq := x.sgsOK && len(x.sgs) > 0
	if old == nil {
		if pairsReq && !sec {
			return errAddressPairsNeedPortSecurity
		}
		switch {
		case !sec && sgsReq:
			return errSGNeedPortSecurity
		case sec && !x.sgsOK && !trusted:
			id, err := s.ensureDefaultSG(ctx, c, p.ProjectID)
			if err != nil {
				return err
			}
			if id != "" {
				sgs = []string{id}
			}
		case sec:
			sgs = x.sgs
		}
		p.AllowedAddressPairs, p.ExtraDHCPOpts = []api.AddressPair{}, []api.ExtraDHCPOpt{}
		if x.tagsOK {
			p.Tags = x.tags
		}
	} else {
		cur, sgs = old.SecurityGroups, old.SecurityGroups
		if !sec {
			if pairsReq || (!x.pairsOK && len(old.AllowedAddressPairs) > 0) {
				return errAddressPairsNeedPortSecurity
			}
			if sgsReq {
				return errSGNeedPortSecurity
			}
			if !x.sgsOK && len(old.SecurityGroups) > 0 {
				return errf(http.StatusConflict, "PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or IP address until security group is removed.")
			}
		}
		if x.sgsOK {
			sgs = x.sgs
		}
	}
	if trusted {
		sgs = []string{}
	}
	if err := s.stageGroups(ctx, c, t, p, cur, sgs); err != nil {
		return err
	}
	if x.pairsOK {
		pairs, err := resolvePairs(x.pairs, p.MACAddress)
		if err != nil {
			return err
		}
		p.AllowedAddressPairs = pairs
	}
	if x.optsOK && old == nil {
		opts, err := createDHCPOpts(x.opts)
		if err != nil {
			return err
		}
		p.ExtraDHCPOpts = opts
	} else if x.optsOK && len(x.opts) > 0 {
		opts, err := mergeDHCPOpts(p.ExtraDHCPOpts, x.opts)
		if err != nil {
			return err
		}
		p.ExtraDHCPOpts = opts
	}
	return nil
}

var (
	errAddressPairsNeedPortSecurity = errf(http.StatusConflict, "AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
	errSGNeedPortSecurity           = errf(http.StatusBadRequest, "PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups.")
)

// stageGroups checks the groups a port is to have (they exist and are its project's, or the
// caller is an admin; all stateful or all stateless) and stages the index keys.
func (s *Service) stageGroups(ctx context.Context, c *auth.Context, t *store.Txn, p *api.Port, cur, want []string) error {
	had := map[string]bool{}
	for _, g := range cur {
		had[g] = true
	}
	joins := false
	for _, g := range want {
		joins = joins || !had[g]
	}
	var missing []string
	stateful := map[bool]bool{}
	for _, id := range want {
		if !joins {
			break // only the groups a port joins are checked, as Neutron's update does
		}
		o, err := store.Get[api.SecurityGroup](ctx, s.st, secgroupKey(id))
		if errors.Is(err, store.ErrNotFound) || (err == nil && !c.IsAdmin() && o.Value.ProjectID != p.ProjectID) {
			missing = append(missing, id)
			continue
		} else if err != nil {
			return err
		}
		stateful[o.Value.Stateful] = true
		if !had[id] {
			t.Unchanged(o.Key, o.ModRevision)
			t.Create(sgPortKey(id, p.ID), "")
		}
	}
	if len(missing) > 0 {
		return sgNotFound(strings.Join(missing, ", "))
	}
	if len(stateful) > 1 {
		return errf(http.StatusConflict, "SecurityGroupConflict", "Error Cannot apply both stateful and stateless security groups on the same port at the same time while attempting the operation.")
	}
	keep := map[string]bool{}
	for _, g := range want {
		keep[g] = true
	}
	for _, g := range cur {
		if !keep[g] {
			t.Remove(sgPortKey(g, p.ID))
		}
	}
	p.SecurityGroups = append([]string{}, want...)
	return nil
}

// unstagePortExt removes a deleted port's group index keys.
func unstagePortExt(t *store.Txn, p *api.Port) {
	for _, g := range p.SecurityGroups {
		t.Remove(sgPortKey(g, p.ID))
	}
}
