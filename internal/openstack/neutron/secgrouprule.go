package neutron

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// Security group rules: decoded and validated as Neutron's API layer and
// _validate_security_group_rule do, stored inside their group (secgroup.go).

// sgProtocols are the protocol names a rule accepts, in Neutron's order (its error lists them).
var sgProtocols = []string{"ah", "dccp", "egp", "esp", "gre", "hopopt", "icmp", "igmp", "ip", "ipip", "ipv6-encap",
	"ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route", "ospf", "pgm", "rsvp", "sctp", "tcp",
	"udp", "udplite", "vrrp"}

var protoNums = map[string]int{"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2,
	"ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
	"ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
	"udplite": 136, "vrrp": 112}

// protoName is Neutron's number → name map (icmpv6 is only an alias; 0 is "ip").
func protoName(num string) (string, bool) {
	n, err := strconv.Atoi(num)
	if err != nil {
		return "", false
	}
	name := ""
	for _, p := range sgProtocols {
		if protoNums[p] == n && p != "icmpv6" {
			name = p
		}
	}
	return name, name != ""
}

// ipv6Only are the protocols an IPv4 rule may not name.
var ipv6Only = map[string]bool{"ipv6-encap": true, "ipv6-frag": true, "ipv6-icmp": true, "icmpv6": true, "ipv6-nonxt": true,
	"ipv6-opts": true, "ipv6-route": true, "41": true, "44": true, "58": true, "59": true, "60": true, "43": true}

func pyList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// rawScalar is a JSON value as Python would print it in Neutron's messages.
func rawScalar(b json.RawMessage) string {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	if t := string(bytes.TrimSpace(b)); t == "null" {
		return "None"
	} else {
		return t
	}
}

func convertProtocol(raw json.RawMessage) (*string, error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	bad := sgInvalid("SecurityGroupRuleInvalidProtocol", "Security group rule protocol %s not supported. Only protocol values %s and integer representations [0 to 255] are supported.",
		rawScalar(raw), "[None, "+pyList(sgProtocols)[1:])
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, bad
	}
	switch t := v.(type) {
	case json.Number:
		n = t
	case string:
		if i, err := strconv.Atoi(strings.TrimSpace(t)); err == nil {
			if i < 0 || i > 255 {
				return nil, bad
			}
			return &t, nil
		}
		l := strings.ToLower(t)
		if _, ok := protoNums[l]; !ok {
			return nil, bad
		}
		return &l, nil
	default:
		return nil, bad
	}
	i, err := strconv.Atoi(string(n))
	if err != nil || i < 0 || i > 255 {
		return nil, bad
	}
	out := strconv.Itoa(i)
	return &out, nil
}

func convertPort(raw json.RawMessage) (*int, error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	bad := sgInvalid("SecurityGroupInvalidPortValue", "Invalid value for port %s", rawScalar(raw))
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return nil, bad
	}
	var s string
	switch t := v.(type) {
	case json.Number:
		s = string(t)
	case string:
		s = strings.TrimSpace(t)
	default:
		return nil, bad
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i > 65535 {
		return nil, bad
	}
	return &i, nil
}

func decodeRule(c *auth.Context, a *attrs) (api.SecurityGroupRule, error) {
	var r api.SecurityGroupRule
	if err := a.readOnly("POST", "id", "created_at", "updated_at", "revision_number", "normalized_cidr"); err != nil {
		return r, err
	}
	proj, err := owner(c, a)
	if err != nil {
		return r, err
	}
	r.TenantID, r.ProjectID = proj, proj
	for _, k := range []string{"security_group_id", "direction"} {
		if !a.has(k) {
			return r, badRequest("Failed to parse request. Required attribute '%s' not specified", k)
		}
	}
	if r.SecurityGroupID, _, err = a.str("security_group_id", 36); err != nil {
		return r, err
	}
	if a.has("remote_group_id") && !a.isNull("remote_group_id") {
		rg, _, err := a.str("remote_group_id", 0)
		if err != nil {
			return r, err
		}
		if rg != "" {
			r.RemoteGroupID = &rg
		}
	}
	if r.Direction, _, err = a.str("direction", 0); err != nil {
		return r, err
	}
	if r.Direction != "ingress" && r.Direction != "egress" {
		return r, badRequest("Invalid input for direction. Reason: %s is not in valid_values.", r.Direction)
	}
	if a.has("protocol") {
		if r.Protocol, err = convertProtocol(a.m["protocol"]); err != nil {
			return r, err
		}
	}
	if a.has("port_range_min") {
		if r.PortRangeMin, err = convertPort(a.m["port_range_min"]); err != nil {
			return r, err
		}
	}
	if a.has("port_range_max") {
		if r.PortRangeMax, err = convertPort(a.m["port_range_max"]); err != nil {
			return r, err
		}
	}
	r.Ethertype = "IPv4"
	if a.has("ethertype") {
		var e string
		json.Unmarshal(a.m["ethertype"], &e)
		switch strings.ToLower(e) {
		case "ipv4":
			r.Ethertype = "IPv4"
		case "ipv6":
			r.Ethertype = "IPv6"
		default:
			return r, sgInvalid("SecurityGroupRuleInvalidEtherType", "Security group rule for ethertype '%s' not supported. Allowed values are ['IPv4', 'IPv6'].", rawScalar(a.m["ethertype"]))
		}
	}
	if a.has("remote_ip_prefix") && !a.isNull("remote_ip_prefix") {
		var p string
		if err := json.Unmarshal(a.m["remote_ip_prefix"], &p); err != nil {
			return r, errf(http.StatusBadRequest, "InvalidCIDR", "Invalid CIDR %s given as IP prefix.", rawScalar(a.m["remote_ip_prefix"]))
		}
		if p != "" {
			pfx, err := parsePrefix(p)
			if err != nil {
				return r, errf(http.StatusBadRequest, "InvalidCIDR", "Invalid CIDR %s given as IP prefix.", p)
			}
			s, norm := pfx.String(), pfx.Masked().String()
			r.RemoteIPPrefix, r.NormalizedCIDR = &s, &norm
		}
	}
	if r.Description, _, err = a.str("description", maxStr); err != nil {
		return r, err
	}
	return r, a.rest()
}

// parsePrefix reads an address or CIDR as netaddr.IPNetwork does (an address is its /32 or /128);
// the host bits are kept.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("not an address")
		}
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	return netip.ParsePrefix(s)
}

// checkRule is Neutron's _validate_security_group_rule without the lookups: canonical forms
// first, then the port range, the prefix's version, the protocol's ethertype and one remote.
func checkRule(r *api.SecurityGroupRule) error {
	if r.Ethertype == "IPv6" && r.Protocol != nil {
		switch *r.Protocol {
		case "icmp", "icmpv6":
			p := "ipv6-icmp"
			r.Protocol = &p
		case "1":
			p := "58"
			r.Protocol = &p
		}
	}
	if r.PortRangeMin != nil && r.PortRangeMax != nil && *r.PortRangeMin == 1 && *r.PortRangeMax == 65535 {
		r.PortRangeMin, r.PortRangeMax = nil, nil
	}
	if r.PortRangeMin != nil || r.PortRangeMax != nil {
		if r.Protocol == nil || *r.Protocol == "" {
			return sgInvalid("SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given.")
		}
		num, ok := protoNums[*r.Protocol]
		if !ok {
			num, _ = strconv.Atoi(*r.Protocol)
		}
		switch num {
		case 33, 132, 6, 17, 136:
			if (r.PortRangeMin != nil && *r.PortRangeMin == 0) || (r.PortRangeMax != nil && *r.PortRangeMax == 0) {
				return sgInvalid("SecurityGroupInvalidPortValue", "Invalid value for port 0")
			}
			if r.PortRangeMin == nil || r.PortRangeMax == nil || *r.PortRangeMin > *r.PortRangeMax {
				return sgInvalid("SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
			}
		case 1, 58:
			for _, f := range []struct {
				v           *int
				field, attr string
			}{{r.PortRangeMin, "type", "port_range_min"}, {r.PortRangeMax, "code", "port_range_max"}} {
				if f.v != nil && (*f.v < 0 || *f.v > 255) {
					return sgInvalid("SecurityGroupInvalidIcmpValue", "Invalid value for ICMP %s (%s) %d. It must be 0 to 255.", f.field, f.attr, *f.v)
				}
			}
			if r.PortRangeMin == nil && r.PortRangeMax != nil {
				return sgInvalid("SecurityGroupMissingIcmpType", "ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", *r.PortRangeMax)
			}
		default:
			return sgInvalid("SecurityGroupInvalidProtocolForPort", "Ports cannot be specified for protocol %d. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.", num)
		}
	}
	if r.RemoteIPPrefix != nil {
		pfx, _ := parsePrefix(*r.RemoteIPPrefix)
		v := "IPv4"
		if pfx.Addr().Is6() {
			v = "IPv6"
		}
		if r.Ethertype != v {
			return sgInvalid("SecurityGroupRuleParameterConflict", "Conflicting value ethertype %s for CIDR %s", r.Ethertype, *r.RemoteIPPrefix)
		}
	}
	if r.Protocol != nil && ipv6Only[*r.Protocol] && r.Ethertype == "IPv4" {
		return sgInvalid("SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype %s for protocol %s.", r.Ethertype, *r.Protocol)
	}
	if r.RemoteIPPrefix != nil && r.RemoteGroupID != nil {
		return sgInvalid("SecurityGroupMultipleRemoteEntites", "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.")
	}
	return nil
}

// ruleKey is Neutron's _rule_to_key: what makes two rules of a group the same.
func ruleKey(r *api.SecurityGroupRule) string {
	opt := func(p *string) string {
		if p == nil {
			return "+"
		}
		return *p
	}
	num := func(p *int) string {
		if p == nil {
			return "+"
		}
		return strconv.Itoa(*p)
	}
	proto := "+"
	if r.Protocol != nil {
		p := *r.Protocol
		if r.Ethertype == "IPv6" {
			if p == "icmp" || p == "icmpv6" {
				p = "ipv6-icmp"
			} else if p == "1" {
				p = "58"
			}
		}
		if n, ok := protoNums[p]; ok {
			proto = p + "/" + strconv.Itoa(n)
		} else if name, ok := protoName(p); ok {
			proto = name + "/" + p
		} else {
			proto = p + "/" + p
		}
	}
	prefix := opt(r.RemoteIPPrefix)
	if prefix == "0.0.0.0/0" || prefix == "::/0" {
		prefix = "+"
	}
	return strings.Join([]string{r.Direction, r.Ethertype, num(r.PortRangeMax), num(r.PortRangeMin), proto,
		opt(r.RemoteGroupID), prefix, r.SecurityGroupID}, "_")
}

// canSeeGroupAs reports whether a group is visible to project (or to an admin caller), as
// Neutron's _check_security_group with the rule's project as the context's.
func canSeeGroupAs(c *auth.Context, g *api.SecurityGroup, project string) bool {
	return c.IsAdmin() || g.ProjectID == project
}

func (s *Service) createSecurityGroupRule(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	a, err := decodeBody(r.Body, "security_group_rule")
	if err != nil {
		return err
	}
	rule, err := decodeRule(c, a)
	if err != nil {
		return err
	}
	if err := checkRule(&rule); err != nil {
		return err
	}
	if _, err := s.ensureDefaultSG(ctx, c, rule.ProjectID); err != nil {
		return err
	}
	now := s.now()
	rule.ID, rule.CreatedAt, rule.UpdatedAt = uuid.NewString(), now, now
	err = retry(ctx, func(int) error {
		t := s.st.Txn()
		if rule.RemoteGroupID != nil && *rule.RemoteGroupID != rule.SecurityGroupID {
			ro, err := store.Get[api.SecurityGroup](ctx, s.st, secgroupKey(*rule.RemoteGroupID))
			if errors.Is(err, store.ErrNotFound) || (err == nil && !canSeeGroupAs(c, &ro.Value, rule.ProjectID)) {
				return sgNotFound(*rule.RemoteGroupID)
			} else if err != nil {
				return err
			}
			t.Unchanged(ro.Key, ro.ModRevision) // a delete of the remote group meanwhile: retry, then 404
		}
		o, err := store.Get[api.SecurityGroup](ctx, s.st, secgroupKey(rule.SecurityGroupID))
		if errors.Is(err, store.ErrNotFound) || (err == nil && !canSeeGroupAs(c, &o.Value, rule.ProjectID)) {
			return sgNotFound(rule.SecurityGroupID)
		} else if err != nil {
			return err
		}
		g := o.Value
		k := ruleKey(&rule)
		for _, old := range g.Rules {
			if ruleKey(&old) == k {
				return errf(http.StatusConflict, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", old.ID)
			}
		}
		if err := s.checkQuota(ctx, s.st, t, rule.ProjectID, "security_group_rule"); err != nil {
			return err
		}
		g.Rules = append(g.Rules, rule)
		g.RevisionNumber++
		g.UpdatedAt = now
		t.Update(o.Key, g, o.ModRevision)
		t.Create(sgRuleKey(rule.ID), g.ID)
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("security group rule created", "security_group", rule.SecurityGroupID, "rule", rule.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"security_group_rule": rule})
	return nil
}

// visibleRule finds a rule and its group; the rule's owner, the group's owner and admins see it.
func (s *Service) visibleRule(ctx context.Context, c *auth.Context, id string) (store.Object[api.SecurityGroup], int, error) {
	gid, err := store.Get[string](ctx, s.st, sgRuleKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return store.Object[api.SecurityGroup]{}, 0, sgRuleNotFound(id)
	} else if err != nil {
		return store.Object[api.SecurityGroup]{}, 0, err
	}
	o, err := store.Get[api.SecurityGroup](ctx, s.st, secgroupKey(gid.Value))
	if errors.Is(err, store.ErrNotFound) {
		return o, 0, sgRuleNotFound(id)
	} else if err != nil {
		return o, 0, err
	}
	for i, r := range o.Value.Rules {
		if r.ID == id {
			if !c.IsAdmin() && r.ProjectID != c.ProjectID && o.Value.ProjectID != c.ProjectID {
				break
			}
			return o, i, nil
		}
	}
	return o, 0, sgRuleNotFound(id)
}

func (s *Service) showSecurityGroupRule(w http.ResponseWriter, r *http.Request) error {
	o, i, err := s.visibleRule(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeOne(w, r, "security_group_rule", o.Value.Rules[i])
}

func (s *Service) listSecurityGroupRules(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	if _, err := s.ensureDefaultSG(ctx, c, listProject(r, c)); err != nil {
		return err
	}
	objs, _, err := store.List[api.SecurityGroup](ctx, s.st, "secgroups/")
	if err != nil {
		return err
	}
	var items []api.SecurityGroupRule
	for _, o := range objs {
		for _, rule := range o.Value.Rules {
			if c.IsAdmin() || rule.ProjectID == c.ProjectID || o.Value.ProjectID == c.ProjectID {
				items = append(items, rule)
			}
		}
	}
	// writeList pages in ID order
	sortRules(items)
	if items == nil {
		items = []api.SecurityGroupRule{}
	}
	return writeList(w, r, "security_group_rules", items, ruleField)
}

func sortRules(rs []api.SecurityGroupRule) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
}

func ruleField(r *api.SecurityGroupRule, f string) ([]string, bool) {
	opt := func(p *string) []string {
		if p == nil {
			return []string{""}
		}
		return []string{*p}
	}
	num := func(p *int) []string {
		if p == nil {
			return []string{""}
		}
		return []string{strconv.Itoa(*p)}
	}
	switch f {
	case "id":
		return []string{r.ID}, true
	case "tenant_id", "project_id":
		return []string{r.ProjectID}, true
	case "security_group_id":
		return []string{r.SecurityGroupID}, true
	case "direction":
		return []string{r.Direction}, true
	case "ethertype":
		return []string{r.Ethertype}, true
	case "protocol":
		return opt(r.Protocol), true
	case "port_range_min":
		return num(r.PortRangeMin), true
	case "port_range_max":
		return num(r.PortRangeMax), true
	case "remote_ip_prefix":
		return opt(r.RemoteIPPrefix), true
	case "normalized_cidr":
		return opt(r.NormalizedCIDR), true
	case "remote_group_id":
		return opt(r.RemoteGroupID), true
	case "description":
		return []string{r.Description}, true
	case "revision_number":
		return []string{strconv.FormatInt(r.RevisionNumber, 10)}, true
	}
	return nil, false
}

func (s *Service) deleteSecurityGroupRule(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	id := r.PathValue("id")
	err := retry(ctx, func(int) error {
		o, i, err := s.visibleRule(ctx, c, id)
		if err != nil {
			return err
		}
		g := o.Value
		g.Rules = append(g.Rules[:i:i], g.Rules[i+1:]...)
		g.RevisionNumber++
		g.UpdatedAt = s.now()
		t := s.st.Txn()
		t.Update(o.Key, g, o.ModRevision)
		t.Remove(sgRuleKey(id))
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
