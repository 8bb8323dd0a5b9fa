package devsim

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"testing"
)

// FuzzMessages feeds arbitrary bytes to the NETCONF framing reader (both framings) and every
// message it yields to the hello and rpc parsers and the rpc handlers of a device without a
// network: nothing panics, every reply is well-formed XML, and re-framing a message reads back
// the same message.
func FuzzMessages(f *testing.F) {
	f.Add([]byte(`<hello><capabilities><capability>urn:ietf:params:netconf:base:1.1</capability></capabilities></hello>]]>]]>`), false)
	f.Add([]byte(`<rpc message-id="1"><lock><target><candidate/></target></lock></rpc>]]>]]><rpc message-id="2"><close-session/></rpc>]]>]]>`), false)
	f.Add([]byte("\n#87\n<rpc message-id=\"101\"><load-configuration action=\"set\"><configuration-set>set vlans bd-7 vlan-id 7</configuration-set></load-configuration></rpc>\n##\n"), true)
	f.Add([]byte("\n#4\n<rpc\n#61\n message-id=\"5\"><commit-configuration><confirmed/></commit-configuration></rpc>\n##\n"), true)
	f.Add([]byte("\n#56\n<rpc><get-configuration format=\"set\" database=\"candidate\"/></rpc>\n##\n"), true)
	f.Add([]byte(`<rpc><load-configuration action="replace"><configuration-text>delete
set interfaces xe-0/0/1 description "a&lt;b&#0;"</configuration-text></load-configuration></rpc>]]>]]>`), false)
	f.Add([]byte("\n#99999999999\n"), true)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	f.Fuzz(func(t *testing.T, data []byte, chunked bool) {
		s := New(Options{})
		d, err := newDevice(s, "fuzz", deviceSettings{hostKey: key})
		if err != nil {
			t.Fatal(err)
		}
		defer d.close()
		sess := &session{id: 1, dev: d, done: make(chan struct{}), log: d.log}
		d.sessions[1] = sess
		r := &msgReader{r: bufio.NewReader(bytes.NewReader(data)), chunked: chunked, max: 1 << 16}
		for range 50 {
			msg, err := r.read()
			if err != nil {
				return
			}
			_, _ = clientHello(msg)
			reply, _ := sess.handle(msg)
			if _, err := parseXML(reply); err != nil {
				t.Fatalf("reply to %q is not XML (%v): %s", msg, err, reply)
			}
			if len(msg) > 0 {
				back, err := (&msgReader{r: bufio.NewReader(bytes.NewReader(frame(true, msg))), chunked: true, max: 1 << 20}).read()
				if err != nil || !bytes.Equal(back, msg) {
					t.Fatalf("re-framed %q read back as %q, %v", msg, back, err)
				}
			}
		}
	})
}
