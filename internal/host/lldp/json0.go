package lldp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// json0 mirrors `lldpcli -f json0 show neighbors details`: every object is a
// list, whatever the count, which is why json0 and not json is parsed.
type json0Doc struct {
	LLDP []struct {
		Interface []json0Interface `json:"interface"`
	} `json:"lldp"`
}

type json0Interface struct {
	Name    string         `json:"name"`
	Via     string         `json:"via"`
	Age     string         `json:"age"`
	Chassis []json0Chassis `json:"chassis"`
	Port    []json0Port    `json:"port"`
	// lldpd before 1.0 put the TTL here as {"ttl": "120"}.
	TTL []json0TTL `json:"ttl"`
}

type json0Chassis struct {
	ID     []json0Typed `json:"id"`
	Name   []json0Value `json:"name"`
	MgmtIP []json0Value `json:"mgmt-ip"`
}

type json0Port struct {
	ID    []json0Typed `json:"id"`
	Descr []json0Value `json:"descr"`
	TTL   []json0TTL   `json:"ttl"`
}

type json0Typed struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type json0Value struct {
	Value string `json:"value"`
}

type json0TTL struct {
	Value string `json:"value"`
	TTL   string `json:"ttl"`
}

// ParseJSON0 parses the output of `lldpcli -f json0 show neighbors details`.
// LastSeen and Changed are left zero: only the caller knows when the document
// was taken (see Lldpd).
func ParseJSON0(data []byte) ([]Neighbor, error) {
	return parseJSON0(data, time.Time{})
}

// parseJSON0 parses a json0 document taken at now; when now is not zero,
// LastSeen is now and Changed is now minus lldpd's age.
func parseJSON0(data []byte, now time.Time) ([]Neighbor, error) {
	var doc json0Doc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse lldpcli json0: %w", err)
	}
	var out []Neighbor
	for _, l := range doc.LLDP {
		for _, ifc := range l.Interface {
			if ifc.Name == "" {
				return nil, fmt.Errorf("parse lldpcli json0: neighbor without interface name")
			}
			n := Neighbor{Interface: cleanString(ifc.Name)}
			if len(ifc.Chassis) > 0 {
				c := ifc.Chassis[0]
				if len(c.ID) > 0 {
					n.ChassisIDSubtype, n.ChassisID = cleanString(c.ID[0].Type), cleanString(c.ID[0].Value)
				}
				n.SystemName = first(c.Name)
				n.MgmtAddress = first(c.MgmtIP)
			}
			ttl := ""
			if len(ifc.Port) > 0 {
				p := ifc.Port[0]
				if len(p.ID) > 0 {
					n.PortIDSubtype, n.PortID = cleanString(p.ID[0].Type), cleanString(p.ID[0].Value)
				}
				n.PortDescription = first(p.Descr)
				if len(p.TTL) > 0 {
					ttl = p.TTL[0].Value + p.TTL[0].TTL
				}
			}
			if ttl == "" && len(ifc.TTL) > 0 {
				ttl = ifc.TTL[0].Value + ifc.TTL[0].TTL
			}
			if ttl != "" {
				secs, err := strconv.ParseUint(ttl, 10, 16)
				if err != nil {
					return nil, fmt.Errorf("parse lldpcli json0: ttl %q of neighbor on %s is not a number of seconds 0-65535", ttl, n.Interface)
				}
				n.TTL = time.Duration(secs) * time.Second
			}
			if !now.IsZero() {
				n.LastSeen = now
				n.Changed = now
				if age, ok := parseAge(ifc.Age); ok {
					n.Changed = now.Add(-age)
				}
			}
			out = append(out, n)
		}
	}
	return out, nil
}

func first(vs []json0Value) string {
	if len(vs) == 0 {
		return ""
	}
	return cleanString(vs[0].Value)
}

// parseAge parses lldpd's age, "0 day, 00:00:13" or "3 days, 01:02:03".
func parseAge(s string) (time.Duration, bool) {
	var d, h, m, sec int
	var unit string
	if _, err := fmt.Sscanf(s, "%d %s %d:%d:%d", &d, &unit, &h, &m, &sec); err != nil {
		return 0, false
	}
	if (unit != "day," && unit != "days,") || d < 0 || d > 100000 || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59 {
		return 0, false
	}
	return time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, true
}
