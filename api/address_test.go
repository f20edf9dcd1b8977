package api_test

import (
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/zdm-io/zdm/api"
	"github.com/zdm-io/zdm/handlers"
)

// The document's address pattern takes what the server takes, so a client
// generated from it (or a fuzzer reading it) is refused for nothing the
// document allows, and the server takes no host the document refuses.
func TestTheDocumentedAddressIsTheOneTheServerTakes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Pattern string `yaml:"pattern"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	required := regexp.MustCompile(doc.Components.Schemas["Address"].Pattern)
	optional := regexp.MustCompile(doc.Components.Schemas["OptionalAddress"].Pattern)
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:19530", true}, {"milvus-0.milvus.svc.cluster.local:19530", true}, {"localhost:1", true}, {"h:65535", true},
		{"[::1]:19530", true}, {"[fe80::1%eth0]:19530", true}, {"h:080", true}, {"milvus_a:19530", true},
		{"", false}, {":19530", false}, {"h", false}, {"h:", false}, {"h:0", false}, {"h:65536", false}, {"h:-1", false}, {"h:1e3", false},
		{"a:b:19530", false}, {"::1:19530", false}, {"[::1:19530", false}, {"[nope]:1", false}, {"[0]:1", false}, {"[7DdA6F5f9:A8%C]:1", false},
		{"[::]:1", true}, {"[2001:db8::8a2e:370:7334]:1", true}, {"[1:2:3:4:5:6:7:8]:1", true}, {"[1:2:3:4:5:6:7:8:9]:1", false},
		{"[1::2::3]:1", false}, {"[::ffff:1.2.3.4]:1", false}, {"[fe80::1%]:1", false}, {"[fe80::1%-x]:1", true}, {"[fe80::1%a b]:1", false}, {"[12345::1]:1", false},
		{"a b:1", false}, {"a\n:1", false}, {"a\x00:1", false}, {"é:1", false}, {"-a:1", false}, {"a.:1", true}, {".a:1", false},
		{"http://h:1", false}, {"h:1/x", false}, {strings.Repeat("a", 253) + ":1", true}, {strings.Repeat("a", 254) + ":1", false},
	} {
		err := handlers.ValidateAddress("endpoint", c.addr, true)
		if (err == nil) != c.ok {
			t.Errorf("the server on %q: %v, want accepted %v", c.addr, err, c.ok)
		}
		if required.MatchString(c.addr) != c.ok {
			t.Errorf("the document's Address on %q: %v, want %v", c.addr, !c.ok, c.ok)
		}
		if optional.MatchString(c.addr) != (c.ok || c.addr == "") {
			t.Errorf("the document's OptionalAddress on %q disagrees with Address", c.addr)
		}
	}
}
