package junos

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name       string
		xml        string
		want       *reply
		wantErrMsg string // substring of reply.Err(); "" = no error
	}{
		{
			name: "ok",
			xml:  `<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="101"><ok/></rpc-reply>`,
			want: &reply{},
		},
		{
			name: "configuration-set",
			xml: `<rpc-reply message-id="102"><configuration-set>
set system host-name leaf1
set groups __vflink_access__ vlans bd-7 description "a &lt;b&gt; &amp; c"
</configuration-set></rpc-reply>`,
			want: &reply{HasConfigSet: true, ConfigSet: "\nset system host-name leaf1\nset groups __vflink_access__ vlans bd-7 description \"a <b> & c\"\n"},
		},
		{
			name: "empty configuration-set",
			xml:  `<rpc-reply message-id="102"><configuration-set></configuration-set></rpc-reply>`,
			want: &reply{HasConfigSet: true},
		},
		{
			name: "commit-results",
			xml: `<rpc-reply xmlns:junos="http://xml.juniper.net/junos/23.4R1/junos" message-id="105">
<commit-results><routing-engine junos:style="normal"><name>re0</name><commit-success/>
<commit-revision>re0-1732560000-7</commit-revision></routing-engine>
<routing-engine><name>re1</name><commit-success/><commit-revision>re1-1732560000-3</commit-revision></routing-engine>
</commit-results></rpc-reply>`,
			want: &reply{Revision: "re0-1732560000-7"},
		},
		{
			name: "warning only (delete of an absent statement)",
			xml: `<rpc-reply message-id="103"><load-configuration-results>
<rpc-error><error-type>protocol</error-type><error-tag>operation-failed</error-tag>
<error-severity>warning</error-severity><error-message>statement not found</error-message></rpc-error>
<ok/></load-configuration-results></rpc-reply>`,
			want: &reply{Warnings: []*RPCError{{Severity: "warning", Tag: "operation-failed", Message: "statement not found"}}},
		},
		{
			name: "error and warning",
			xml: `<rpc-reply message-id="103"><load-configuration-results>
<rpc-error><error-severity>warning</error-severity><error-message>statement not found</error-message></rpc-error>
<rpc-error><error-type>protocol</error-type><error-tag>operation-failed</error-tag><error-severity>error</error-severity>
<error-path>[edit interfaces xe-0/0/3]</error-path><error-info><bad-element>mtux</bad-element></error-info>
<error-message>
syntax error
</error-message></rpc-error>
<load-error-count>1</load-error-count></load-configuration-results></rpc-reply>`,
			want: &reply{
				Warnings: []*RPCError{{Severity: "warning", Message: "statement not found"}},
				Errors: []*RPCError{{Severity: "error", Tag: "operation-failed", Path: "[edit interfaces xe-0/0/3]",
					Element: "mtux", Message: "syntax error"}},
			},
			wantErrMsg: `syntax error (element "mtux") [operation-failed]`,
		},
		{
			name: "prefixed (rfc-compliant) rpc-error",
			xml: `<nc:rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="104"><nc:rpc-error>
<nc:error-type>protocol</nc:error-type><nc:error-tag>lock-denied</nc:error-tag><nc:error-severity>error</nc:error-severity>
<nc:error-message>configuration database locked by: admin terminal p0 (pid 123)</nc:error-message>
<nc:error-info><nc:session-id>7</nc:session-id></nc:error-info></nc:rpc-error></nc:rpc-reply>`,
			want: &reply{Errors: []*RPCError{{Severity: "error", Tag: "lock-denied",
				Message: "configuration database locked by: admin terminal p0 (pid 123)"}}},
			wantErrMsg: "configuration database locked by: admin terminal p0 (pid 123) [lock-denied]",
		},
		{
			name:       "rpc-error without severity is a failure",
			xml:        `<rpc-reply><rpc-error><error-message>commit failed: boom</error-message></rpc-error></rpc-reply>`,
			want:       &reply{Errors: []*RPCError{{Message: "commit failed: boom"}}},
			wantErrMsg: "commit failed: boom",
		},
		{
			name: "commit failure",
			xml: `<rpc-reply><commit-results><routing-engine><name>re0</name><rpc-error><error-severity>error</error-severity>
<error-message>configuration check-out failed</error-message></rpc-error></routing-engine></commit-results></rpc-reply>`,
			want:       &reply{Errors: []*RPCError{{Severity: "error", Message: "configuration check-out failed"}}},
			wantErrMsg: "configuration check-out failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseReply([]byte(tt.xml))
			if err != nil {
				t.Fatalf("parseReply: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
			err = got.Err()
			switch {
			case tt.wantErrMsg == "" && err != nil:
				t.Errorf("Err() = %v, want nil", err)
			case tt.wantErrMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErrMsg)):
				t.Errorf("Err() = %v, want one containing %q", err, tt.wantErrMsg)
			}
			if err != nil {
				var re *RPCError
				if !errors.As(err, &re) {
					t.Errorf("Err() = %T, want one wrapping *RPCError", err)
				}
			}
		})
	}
}

func TestParseReplyMalformed(t *testing.T) {
	for _, in := range []string{
		"",
		"   ",
		`<rpc-reply><ok/>`,
		`<hello><capabilities/></hello>`,
		`<rpc-reply><rpc-error><error-message>x</rpc-error></rpc-reply>`,
		`not xml at all`,
	} {
		if got, err := parseReply([]byte(in)); err == nil {
			t.Errorf("parseReply(%q) = %+v, want an error", in, got)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add(`<rpc-reply><ok/></rpc-reply>`)
	f.Add(`<rpc-reply><configuration-set>set groups __vflink_evpn__ switch-options vrf-target auto</configuration-set></rpc-reply>`)
	f.Add(`<rpc-reply><rpc-error><error-severity>warning</error-severity><error-message>statement not found</error-message></rpc-error></rpc-reply>`)
	f.Add(`<rpc-reply><commit-results><routing-engine><commit-revision>re0-1-1</commit-revision></routing-engine></commit-results></rpc-reply>`)
	f.Fuzz(func(t *testing.T, in string) {
		r, err := parseReply([]byte(in))
		if err != nil {
			return
		}
		if r.Err() != nil && len(r.Errors) == 0 {
			t.Errorf("Err() = %v without errors", r.Err())
		}
		for _, w := range r.Warnings {
			if w.Severity != "warning" {
				t.Errorf("warning with severity %q", w.Severity)
			}
		}
		if r.HasConfigSet {
			if _, err := filterRunning(r.ConfigSet); err != nil {
				// allowed: a device may send a line that does not tokenize; it must be an error, not a panic
				return
			}
		}
	})
}
