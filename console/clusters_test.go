package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// The clusters page registers a cluster (the API's refusal next to its
// field, registering nothing), and removes one after a second click; a
// viewer gets neither.
func TestConsoleRegistersAndRemovesClusters(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.signIn(st.OrgAdminToken)
	b.run(chromedp.Click(chromedp.CSS(`#nav a[data-nav="clusters"]`)))
	b.until("the form", `document.getElementById("f-endpoint") && document.querySelectorAll("#clusters tr[data-cluster]").length == 1`, 10*time.Second)
	if org := eval[string](b, `document.getElementById("f-organization").value`); org != "acme" {
		t.Errorf("the organization offered: %q, want the signed-in admin's", org)
	}
	b.run(chromedp.SetValue(chromedp.ID("f-name"), "staging"), chromedp.SetValue(chromedp.ID("f-project"), "search"),
		chromedp.SetValue(chromedp.ID("f-endpoint"), "milvus staging"), chromedp.SetValue(chromedp.ID("f-proxy_listen"), "127.0.0.1:1"),
		chromedp.Click(chromedp.ID("register-button")))
	b.until("the endpoint's error", `document.querySelector('[data-error="endpoint"]').textContent.includes("host:port")`, 10*time.Second)
	if n := len(s.Do(t, "GET", "/v1/clusters", st.AdminToken, nil).JSON(t)["clusters"].([]any)); n != 1 {
		t.Fatalf("a refused form registered a cluster: %d clusters", n)
	}
	eval[string](b, `document.getElementById("f-proxy_listen").value = ""`) // chromedp cannot set an empty value
	b.run(chromedp.SetValue(chromedp.ID("f-endpoint"), "milvus-staging:19530"),
		chromedp.SetValue(chromedp.ID("f-username"), "root"), chromedp.SetValue(chromedp.ID("f-password"), "s3cret-stage"),
		chromedp.Click(chromedp.ID("f-spare")), chromedp.Click(chromedp.ID("register-button")))
	b.until("the new row", `document.getElementById("register-message").textContent.startsWith("Registered staging") && document.querySelectorAll("#clusters tr[data-cluster]").length == 2`, 10*time.Second)
	var staging map[string]any
	for _, c := range s.Do(t, "GET", "/v1/clusters", st.AdminToken, nil).JSON(t)["clusters"].([]any) {
		if c := c.(map[string]any); c["name"] == "staging" {
			staging = c
		}
	}
	if staging == nil || staging["spare"] != true || staging["has_credentials"] != true || staging["endpoint"] != "milvus-staging:19530" {
		t.Fatalf("the registered cluster: %v", staging)
	}
	if v := eval[string](b, `document.getElementById("f-password").value + document.getElementById("f-name").value`); v != "" {
		t.Errorf("the form kept %q after registering", v)
	}
	b.screenshot("9-cluster-registered")

	// Editing: the row's Edit fills the form; what changed is saved, the
	// name and scope stay; a refusal is shown by its field and changes
	// nothing; Cancel brings the register form back.
	row := `#clusters tr[data-cluster="` + staging["id"].(string) + `"]`
	b.click("the edit button", row+` button[data-edit]`)
	b.until("the edit form", `document.getElementById("form-title").textContent == "Edit staging" && document.getElementById("f-name").readOnly && document.getElementById("f-spare").checked`, 5*time.Second)
	b.run(chromedp.SetValue(chromedp.ID("f-proxy_listen"), "127.0.0.1:19598"), chromedp.Click(chromedp.ID("f-spare")), chromedp.Click(chromedp.ID("register-button")))
	b.until("the saved message", `document.getElementById("register-message").textContent == "Saved staging: proxy_listen, spare changed." && document.getElementById("form-title").textContent == "Register a cluster"`, 10*time.Second)
	got := s.Do(t, "GET", "/v1/clusters/"+staging["id"].(string), st.AdminToken, nil).JSON(t)
	if got["proxy_listen"] != "127.0.0.1:19598" || got["spare"] != false || got["name"] != "staging" || got["endpoint"] != "milvus-staging:19530" || got["has_credentials"] != true {
		t.Fatalf("the edited cluster: %v", got)
	}
	b.click("the edit button", row+` button[data-edit]`)
	b.until("the edit form", `document.getElementById("f-proxy_listen").value == "127.0.0.1:19598"`, 5*time.Second)
	b.run(chromedp.SetValue(chromedp.ID("f-endpoint"), "milvus staging"), chromedp.Click(chromedp.ID("register-button")))
	b.until("the endpoint's error", `document.querySelector('[data-error="endpoint"]').textContent.includes("host:port")`, 10*time.Second)
	if e := s.Do(t, "GET", "/v1/clusters/"+staging["id"].(string), st.AdminToken, nil).JSON(t)["endpoint"]; e != "milvus-staging:19530" {
		t.Fatalf("a refused edit changed the endpoint to %v", e)
	}
	b.run(chromedp.Click(chromedp.ID("edit-cancel")))
	b.until("the register form", `document.getElementById("form-title").textContent == "Register a cluster" && !document.getElementById("f-name").readOnly && document.getElementById("f-endpoint").value == ""`, 5*time.Second)

	// Removing: the first click asks, the second removes.
	b.click("the remove button", row+` button[data-remove]`)
	b.until("the question", `document.querySelector('`+row+` button[data-remove]').textContent == "Remove staging?"`, 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // a refresh meanwhile keeps the question
	if n := len(s.Do(t, "GET", "/v1/clusters", st.AdminToken, nil).JSON(t)["clusters"].([]any)); n != 2 {
		t.Fatalf("the first click removed the cluster")
	}
	b.click("the question", row+` button[data-confirming]`)
	b.until("the row gone", `!document.querySelector('`+row+`') && document.getElementById("remove-message").textContent.includes("Removed staging")`, 10*time.Second)

	// A question left unanswered goes away, and nothing is removed.
	prod := `#clusters tr[data-cluster]:not([data-cluster="` + staging["id"].(string) + `"]) button[data-remove]`
	b.click("prod's remove button", prod)
	b.until("the question", `document.querySelector('`+prod+`').textContent == "Remove prod?"`, 5*time.Second)
	b.until("the question gone", `document.querySelector('`+prod+`').textContent == "Remove"`, 20*time.Second)
	if n := len(s.Do(t, "GET", "/v1/clusters", st.AdminToken, nil).JSON(t)["clusters"].([]any)); n != 1 {
		t.Fatalf("an unanswered question removed a cluster: %d left", n)
	}

	// A viewer reads the page; the form and the buttons do nothing for it.
	v := b.tab()
	v.signIn(st.ViewerToken)
	v.run(chromedp.Click(chromedp.CSS(`#nav a[data-nav="clusters"]`)))
	v.until("the viewer's page", `document.querySelectorAll("#clusters tr[data-cluster]").length == 1`, 10*time.Second)
	if eval[bool](v, `document.getElementById("register-button").disabled && !document.querySelector("#clusters button[data-remove]")`) != true ||
		!strings.Contains(v.text(), "can view clusters but not register them") {
		t.Errorf("a viewer's clusters page:\n%s", v.text())
	}
}
